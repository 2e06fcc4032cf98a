#include "tasks/expression.h"

namespace handoff {

namespace {

constexpr int kMaxDepth = 64;
constexpr size_t kMaxLiteralDigits = 9;

// Recursive descent over
//   expr   := term   (('+' | '-') term)*
//   term   := factor (('*' | '/') factor)*
//   factor := integer | '(' expr ')'
// Every failure unwinds as nullopt; depth is bounded so hostile nesting cannot overflow the stack.
class Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}

  std::optional<ExprValue> run() {
    auto v = expr(0);
    skip_spaces();
    if (!v || pos_ != s_.size()) return std::nullopt;
    out_.value = *v;
    return std::move(out_);
  }

 private:
  void skip_spaces() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  }

  bool peek_any(const char* ops, char* found) {
    skip_spaces();
    if (pos_ >= s_.size()) return false;
    for (const char* p = ops; *p; ++p)
      if (s_[pos_] == *p) {
        *found = *p;
        return true;
      }
    return false;
  }

  std::optional<Rational> combine(char op, const Rational& a, const Rational& b) {
    auto r = apply_op(op, a, b);
    if (r) out_.steps.push_back(ExprStep{a, b, *r, op});
    return r;
  }

  // One precedence level: operands read by `operand`, combined left to right by the operators in `ops`.
  std::optional<Rational> left_assoc(int depth, const char* ops,
                                     std::optional<Rational> (Parser::*operand)(int)) {
    auto acc = (this->*operand)(depth);
    char op;
    while (acc && peek_any(ops, &op)) {
      ++pos_;
      auto rhs = (this->*operand)(depth);
      if (!rhs) return std::nullopt;
      acc = combine(op, *acc, *rhs);
    }
    return acc;
  }

  std::optional<Rational> expr(int depth) { return left_assoc(depth, "+-", &Parser::term); }
  std::optional<Rational> term(int depth) { return left_assoc(depth, "*/", &Parser::factor); }

  std::optional<Rational> factor(int depth) {
    skip_spaces();
    if (pos_ >= s_.size()) return std::nullopt;
    if (s_[pos_] == '(') {
      if (depth >= kMaxDepth) return std::nullopt;
      ++pos_;
      auto v = expr(depth + 1);
      skip_spaces();
      if (!v || pos_ >= s_.size() || s_[pos_] != ')') return std::nullopt;
      ++pos_;
      return v;
    }
    size_t start = pos_;
    int64_t n = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      if (pos_ - start >= kMaxLiteralDigits) return std::nullopt;
      n = n * 10 + (s_[pos_] - '0');
      ++pos_;
    }
    if (pos_ == start) return std::nullopt;  // unary minus, letters, stray operators all end here
    out_.literals.push_back(n);
    return make_rational(n);
  }

  const std::string& s_;
  size_t pos_ = 0;
  ExprValue out_;
};

}  // namespace

std::optional<ExprValue> evaluate_expression(const std::string& text) {
  return Parser(text).run();
}

}  // namespace handoff
