#include "tasks/answer.h"

namespace handoff {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Non-negative decimal integer from a run of digits; more than 18 digits is refused (no overflow possible).
std::optional<int64_t> parse_digits(const std::string& s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

// "12", "12.50", ".5" (the sign and decorations are already stripped).
std::optional<Rational> parse_decimal(const std::string& s) {
  size_t dot = s.find('.');
  if (dot == std::string::npos) {
    auto v = parse_digits(s);
    return v ? make_rational(*v) : std::nullopt;
  }
  std::string whole = s.substr(0, dot), frac = s.substr(dot + 1);
  if ((whole.empty() && frac.empty()) || whole.size() + frac.size() > 18) return std::nullopt;
  if (frac.empty()) return std::nullopt;  // "6." is a sentence end, not a number format we accept
  auto w = whole.empty() ? std::optional<int64_t>(0) : parse_digits(whole);
  auto f = parse_digits(frac);
  if (!w || !f) return std::nullopt;
  int64_t scale = 1;
  for (size_t i = 0; i < frac.size(); ++i) scale *= 10;
  return make_rational(*w * scale + *f, scale);
}

}  // namespace

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::optional<Rational> parse_numeric_answer(const std::string& text) {
  // Decorations are dropped in one pass over the trimmed text, judged by their raw neighbours:
  // '$' anywhere; whitespace unless it separates two digits ("3 4" is two numbers); a comma only as a
  // thousands separator between two digits ("3, 4" still fails).
  const std::string t0 = trim(text);
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  std::string t;
  for (size_t i = 0; i < t0.size(); ++i) {
    char c = t0[i];
    if (c == '$') continue;
    if (is_space(c)) {
      size_t j = i;
      while (j < t0.size() && is_space(t0[j])) ++j;
      if (!t.empty() && is_digit(t.back()) && j < t0.size() && is_digit(t0[j])) return std::nullopt;
      i = j - 1;
      continue;
    }
    if (c == ',') {
      if (i == 0 || i + 1 >= t0.size() || !is_digit(t0[i - 1]) || !is_digit(t0[i + 1])) return std::nullopt;
      continue;
    }
    t.push_back(c);
  }
  bool negative = false;
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
    negative = t[0] == '-';
    t.erase(0, 1);
  }
  if (t.empty()) return std::nullopt;
  std::optional<Rational> value;
  size_t slash = t.find('/');
  if (slash == std::string::npos) {
    value = parse_decimal(t);
  } else {
    auto p = parse_digits(t.substr(0, slash)), q = parse_digits(t.substr(slash + 1));
    if (!p || !q) return std::nullopt;
    value = make_rational(*p, *q);  // nullopt for x/0
  }
  if (!value) return std::nullopt;
  if (negative) value->num = -value->num;
  return value;
}

bool numeric_answers_equal(const std::string& a, const std::string& b) {
  auto x = parse_numeric_answer(a), y = parse_numeric_answer(b);
  return x && y && *x == *y;
}

}  // namespace handoff
