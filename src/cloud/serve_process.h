#pragma once
// `handoff serve` as a real child process on 127.0.0.1: started with an ephemeral port, its URL read from the
// "listening on …" line it prints, stopped with SIGTERM (graceful) when this object goes away.
#include <sys/types.h>

#include <string>
#include <vector>

#include "common/child_process.h"  // self_executable

namespace handoff {

class ServeProcess {
 public:
  // args follow `handoff serve` (e.g. {"--model", dir, "--model-name", "cloud"}); "--port 0" is added.
  // Throws Error if the child exits or prints no URL within `timeout_s`.
  ServeProcess(const std::vector<std::string>& args, const std::string& log_path, double timeout_s = 60);
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  const std::string& url() const { return url_; }  // http://127.0.0.1:PORT
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string url_;
};

}  // namespace handoff
