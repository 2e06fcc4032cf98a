#include "rl/metrics_log.h"

#include <fstream>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"

namespace handoff {

MetricsLog::MetricsLog(const std::string& path, int64_t resume_step) : path_(path) {
  std::string kept;
  if (resume_step > 0 && file_exists(path)) {
    std::istringstream in(read_file(path));
    for (std::string line; std::getline(in, line);) {
      try {
        auto j = nlohmann::json::parse(line);
        if (j.value("step", int64_t{0}) <= resume_step) kept += line + "\n";
      } catch (const std::exception&) {
        // a torn last line from a crash: drop it
      }
    }
  }
  write_file_atomic(path, kept);
}

void MetricsLog::write(const nlohmann::json& line) {
  std::ofstream out(path_, std::ios::app);
  if (!out) throw Error("cannot append to " + path_);
  out << line.dump() << "\n";
}

}  // namespace handoff
