#pragma once
// One error type for everything a user can act on: what failed, and what to do about it.
// The CLI maps it to a non-zero exit, the server to an HTTP 4xx/5xx JSON error.
#include <stdexcept>
#include <string>

namespace handoff {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, const std::string& hint = "")
      : std::runtime_error(hint.empty() ? what : what + " (" + hint + ")"), hint_(hint) {}
  const std::string& hint() const { return hint_; }

 private:
  std::string hint_;
};

}  // namespace handoff
