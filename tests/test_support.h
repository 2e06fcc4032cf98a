#pragma once
// Small helpers the test files share: a scratch directory, the message of an expected handoff::Error, and a
// loopback port nothing listens on.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "common/error.h"
#include "common/free_port.h"

namespace handoff::testing {

// A fresh directory under the system temp dir, removed with the object.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("handoff_" + name)) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string str(const std::string& leaf = "") const {
    return leaf.empty() ? path.string() : (path / leaf).string();
  }
};

// The references the parity tests compare against (python3-torch, python3-jinja2, node with tests/js's
// packages) are installed by scripts/setup.sh. One policy for all of them: a missing reference is a failure
// (never a skip) whose message gives the command that installs it. Use as
// ASSERT_TRUE(reference_installed(available, "python3 with torch", "apt-get install python3-torch")).
inline ::testing::AssertionResult reference_installed(bool available, const std::string& what,
                                                      const std::string& install_command) {
  if (available) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ", the reference of this test, is not installed: run `"
                                       << install_command << "` (or `bash scripts/setup.sh`, which installs "
                                       << "every reference)";
}

// The message of the handoff::Error `f` throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A port nothing listens on: bound (not listening) to learn a free number, then closed.
inline int free_port() {
  return handoff::free_local_port();
}

}  // namespace handoff::testing
