#include "cloud/serve_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/child_process.h"
#include "common/error.h"

namespace handoff {

ServeProcess::ServeProcess(const std::vector<std::string>& args, const std::string& log_path,
                           double timeout_s) {
  int out[2];
  if (pipe(out) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
  const std::string exe = self_executable();
  std::vector<std::string> argv_s = {exe, "serve"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  argv_s.push_back("--port");
  argv_s.push_back("0");
  pid_ = fork();
  if (pid_ < 0) throw Error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) dup2(log, STDERR_FILENO);
    close(out[0]);
    close(out[1]);
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (url_.empty()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[512];
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, n);
    auto at = got.find("listening on ");
    auto nl = got.find('\n', at == std::string::npos ? 0 : at);
    if (at != std::string::npos && nl != std::string::npos) url_ = got.substr(at + 13, nl - at - 13);
  }
  // Our end of the pipe stays open until the child is gone: a later write to its stdout must not SIGPIPE it.
  stdout_fd_ = out[0];
  if (url_.empty()) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    close(stdout_fd_);
    throw Error(
        "the cloud server did not start (no 'listening on' line within " + std::to_string(timeout_s) + " s)",
        "see " + log_path);
  }
}

ServeProcess::~ServeProcess() {
  if (pid_ <= 0) return;
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{stdout_fd_};
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {  // up to 10 s for in-flight requests to finish
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

}  // namespace handoff
