#include "cli/preset.h"

#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"

#ifndef HANDOFF_SOURCE_DIR
#define HANDOFF_SOURCE_DIR "."
#endif

namespace handoff::cli {

nlohmann::json load_preset(const std::string& name) {
  std::string path;
  if (name.find('/') != std::string::npos || name.find(".json") != std::string::npos) {
    path = name;
  } else {
    for (const std::string& dir : {std::string(HANDOFF_SOURCE_DIR) + "/configs", std::string("configs")}) {
      if (file_exists(dir + "/" + name + ".json")) {
        path = dir + "/" + name + ".json";
        break;
      }
    }
    if (path.empty()) {
      std::string known;
      for (const std::string& dir : {std::string(HANDOFF_SOURCE_DIR) + "/configs", std::string("configs")})
        if (std::filesystem::is_directory(dir))
          for (const auto& e : std::filesystem::directory_iterator(dir))
            if (e.path().extension() == ".json") known += " " + e.path().stem().string();
      throw Error("unknown preset '" + name + "'",
                  "known presets:" + (known.empty() ? std::string(" (none found)") : known));
    }
  }
  if (!file_exists(path)) throw Error("preset file " + path + " does not exist");
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
}

}  // namespace handoff::cli
