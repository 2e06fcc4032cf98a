#pragma once
// Runs the built `handoff` binary in a shell and captures its exit code and combined output.
#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <string>

namespace handoff::testing {

struct CliResult {
  int code = -1;
  std::string output;
};

// Any shell command (a system tool beside the binary, e.g. sha256sum), output captured the same way.
inline CliResult run_cli_shell(const std::string& command) {
  CliResult r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// env: assignments put before the command, e.g. "HANDOFF_KERNELS=native".
inline CliResult run_cli(const std::string& args, const std::string& env = "") {
  return run_cli_shell((env.empty() ? "" : env + " ") + std::string(HANDOFF_BINARY) + " " + args);
}

}  // namespace handoff::testing
