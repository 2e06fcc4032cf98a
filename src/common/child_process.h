#pragma once
// A child process of this executable (`handoff <subcommand> …`) with its stdout and stderr in a log file:
// how `handoff demo` runs RL methods side by side, one core each. The destructor stops a child still
// running (SIGTERM, then SIGKILL), so an error in the parent never leaves orphans computing.
#include <sys/types.h>

#include <string>
#include <vector>

namespace handoff {

// The running executable (/proc/self/exe), also after a rebuild replaced the file.
std::string self_executable();

class ChildProcess {
 public:
  // args: the arguments after the executable (e.g. {"train", "--algo", "gapg", …}). `program`: another
  // executable to run instead of this one, looked up on PATH (e.g. "torchrun").
  ChildProcess(const std::vector<std::string>& args, const std::string& log_path,
               const std::string& program = "");
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // True while the child runs; once it has ended, exit_code() tells how.
  bool running();
  int wait();  // blocks; the exit code (128 + signal if killed)
  int exit_code() const { return code_; }
  const std::string& log_path() const { return log_; }
  pid_t pid() const { return pid_; }

 private:
  void reap(int status);
  pid_t pid_ = -1;
  int code_ = -1;
  std::string log_;
};

}  // namespace handoff
