#include "tasks/math_answer.h"

#include <cctype>
#include <set>
#include <vector>

#include "tasks/answer.h"

namespace handoff {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0;
}
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

// Index just past the '}' matching the '{' at `open`, or npos when it never closes.
size_t matching_brace(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i + 1;
  }
  return std::string::npos;
}

// Removes a LaTeX command `cmd` (e.g. "\left") only where it is not the prefix of a longer command name.
void remove_command(std::string& s, const std::string& cmd) {
  for (size_t pos = s.find(cmd); pos != std::string::npos; pos = s.find(cmd, pos)) {
    const size_t end = pos + cmd.size();
    if (end < s.size() && is_alpha(s[end])) {
      pos = end;
      continue;
    }
    s.erase(pos, cmd.size());
  }
}

// \text{X} → " X " for each text-like command, innermost content kept with its braces balanced.
void unwrap_text_commands(std::string& s) {
  for (const char* cmd : {"\\textbf{", "\\textnormal{", "\\textrm{", "\\text{", "\\mbox{", "\\mathrm{"}) {
    const std::string c = cmd;
    for (size_t pos = s.find(c); pos != std::string::npos; pos = s.find(c, pos)) {
      const size_t open = pos + c.size() - 1;
      const size_t end = matching_brace(s, open);
      if (end == std::string::npos) break;
      s = s.substr(0, pos) + " " + s.substr(open + 1, end - open - 2) + " " + s.substr(end);
    }
  }
}

// "\frac12" → "\frac{1}{2}", "\frac1{b}" → "\frac{1}{b}", "\sqrt3" → "\sqrt{3}" (Hendrycks et al.'s fix_fracs
// / fix_sqrt: shorthand arguments get braces).
void brace_shorthand_arguments(std::string& s) {
  auto brace_one = [&](size_t& i) {
    if (i < s.size() && s[i] != '{' && s[i] != '\\' && s[i] != '[' && !is_space(s[i])) {
      s.insert(i, "{");
      s.insert(i + 2, "}");
      i += 3;
    } else if (i < s.size() && s[i] == '{') {
      size_t end = matching_brace(s, i);
      i = end == std::string::npos ? s.size() : end;
    }
  };
  for (const std::string cmd : {"\\frac", "\\sqrt"}) {
    for (size_t pos = s.find(cmd); pos != std::string::npos; pos = s.find(cmd, pos + 1)) {
      size_t i = pos + cmd.size();
      if (i < s.size() && is_alpha(s[i])) continue;  // a longer command name
      brace_one(i);
      if (cmd == "\\frac") brace_one(i);
    }
  }
}

// Words that are units or nouns after a number ("5 cm", "12 apples"), not mathematics ("3 pi", "2 x").
bool is_unit_word(const std::string& w) {
  static const std::set<std::string> kMath = {"pi", "sqrt", "cdot", "times", "frac", "and", "or", "infty"};
  std::string core = w;
  if (core.size() > 2 && core[core.size() - 2] == '^' && (core.back() == '2' || core.back() == '3'))
    core.resize(core.size() - 2);  // cm^2, m^3
  if (!core.empty() && core.back() == '.') core.pop_back();
  if (core.size() < 2 || kMath.count(core)) return false;
  for (char c : core)
    if (!is_alpha(c)) return false;
  return true;
}

// Drops trailing unit words when what precedes them ends like a number.
std::string drop_units(const std::string& s) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !is_space(s[j])) ++j;
    if (j > i) words.push_back(s.substr(i, j - i));
    i = j;
  }
  auto is_exponent = [](const std::string& w) {
    return w == "^2" || w == "^3" || w == "^{2}" || w == "^{3}";
  };
  size_t keep = words.size();
  while (keep > 1) {
    if (is_unit_word(words[keep - 1])) {
      --keep;
    } else if (keep > 2 && is_exponent(words[keep - 1]) && is_unit_word(words[keep - 2])) {
      keep -= 2;  // "cm ^2" (from "\text{ cm}^2")
    } else {
      break;
    }
  }
  if (keep == words.size() || keep == 0) return s;
  const std::string& last = words[keep - 1];
  if (last.empty() || !(is_digit(last.back()) || last.back() == '}')) return s;
  std::string out;
  for (size_t k = 0; k < keep; ++k) out += (k ? " " : "") + words[k];
  return out;
}

// "[+-]digits[.digits]" with optional thousands commas (only as full groups of three: "1,234" but not
// "1,23").
std::optional<Rational> parse_plain_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  std::string digits_only = s.substr(0, i);
  const size_t int_end = std::min(s.find('.'), s.size());
  const std::string int_part = s.substr(i, int_end - i);
  if (int_part.find(',') != std::string::npos) {
    // Groups: first 1-3 digits, then ",ddd" groups.
    size_t first = int_part.find(',');
    if (first == 0 || first > 3) return std::nullopt;
    for (size_t k = first; k < int_part.size(); k += 4)
      if (int_part[k] != ',' || k + 4 > int_part.size()) return std::nullopt;
  }
  for (char c : int_part)
    if (c != ',') digits_only.push_back(c);
  digits_only += s.substr(int_end);
  for (size_t k = i; k < digits_only.size(); ++k)
    if (!is_digit(digits_only[k]) && digits_only[k] != '.') return std::nullopt;
  return parse_numeric_answer(digits_only);
}

// A number, "a/b" of numbers, or "[+-]\frac{a}{b}" of numbers.
std::optional<Rational> parse_value(const std::string& s) {
  if (s.empty()) return std::nullopt;
  size_t sign_len = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  const bool negative = s[0] == '-';
  const std::string body = s.substr(sign_len);
  std::optional<Rational> num, den;
  if (body.rfind("\\frac{", 0) == 0) {
    const size_t a_end = matching_brace(body, 5);
    if (a_end == std::string::npos || a_end >= body.size() || body[a_end] != '{') return std::nullopt;
    const size_t b_end = matching_brace(body, a_end);
    if (b_end != body.size()) return std::nullopt;
    num = parse_value(body.substr(6, a_end - 7));
    den = parse_value(body.substr(a_end + 1, b_end - a_end - 2));
  } else {
    const size_t slash = body.find('/');
    if (slash == std::string::npos) {
      num = parse_plain_number(body);
      den = make_rational(1);
    } else {
      num = parse_plain_number(body.substr(0, slash));
      den = parse_plain_number(body.substr(slash + 1));
    }
  }
  if (!num || !den) return std::nullopt;
  auto v = div(*num, *den);
  if (v && negative) v->num = -v->num;
  return v;
}

std::string normalize_text(const std::string& text) {
  std::string s = trim(text);
  if (auto boxed = last_boxed(s)) s = *boxed;
  for (const char* drop : {"\\!", "\\$", "$", "^{\\circ}", "^\\circ", "\xc2\xb0", "\\%", "%"})
    replace_all(s, drop, "");
  for (const char* space : {"\\,", "\\;", "\\:", "\\ ", "~"}) replace_all(s, space, " ");
  replace_all(s, "{,}", ",");
  remove_command(s, "\\left");
  remove_command(s, "\\right");
  remove_command(s, "\\displaystyle");
  replace_all(s, "\\dfrac", "\\frac");
  replace_all(s, "\\tfrac", "\\frac");
  unwrap_text_commands(s);
  s = trim(s);
  // "x = 5", "k=-2": a short variable name before a single '=' is not part of the answer.
  const size_t eq = s.find('=');
  if (eq != std::string::npos && s.find('=', eq + 1) == std::string::npos) {
    const std::string lhs = trim(s.substr(0, eq));
    if (!lhs.empty() && lhs.size() <= 2 && is_alpha(lhs[0])) s = trim(s.substr(eq + 1));
  }
  while (!s.empty() && s.back() == '.') s.pop_back();  // sentence end: "42."
  s = drop_units(s);
  std::string compact;
  for (char c : s)
    if (!is_space(c)) compact.push_back(c);
  brace_shorthand_arguments(compact);
  if (compact.rfind("0.", 0) != 0 && compact.rfind(".", 0) == 0) compact = "0" + compact;  // ".5" → "0.5"
  return compact;
}

}  // namespace

std::optional<std::string> last_boxed(const std::string& text) {
  size_t best = std::string::npos, best_len = 0;
  for (const std::string cmd : {"\\boxed", "\\fbox"}) {
    size_t pos = text.rfind(cmd);
    if (pos != std::string::npos && (best == std::string::npos || pos > best)) {
      best = pos;
      best_len = cmd.size();
    }
  }
  if (best == std::string::npos) return std::nullopt;
  size_t i = best + best_len;
  if (i < text.size() && text[i] == '{') {
    const size_t end = matching_brace(text, i);
    if (end == std::string::npos) return std::nullopt;
    return text.substr(i + 1, end - i - 2);
  }
  if (i < text.size() && text[i] == ' ') {  // "\boxed 5": the token up to the next space or '$'
    ++i;
    size_t j = i;
    while (j < text.size() && !is_space(text[j]) && text[j] != '$') ++j;
    if (j > i) return text.substr(i, j - i);
  }
  return std::nullopt;
}

std::optional<Rational> math_answer_value(const std::string& text) {
  return parse_value(normalize_text(text));
}

std::string normalize_math_answer(const std::string& text) {
  const std::string s = normalize_text(text);
  if (auto v = parse_value(s)) return v->to_string();
  return s;
}

bool math_answers_equal(const std::string& a, const std::string& b) {
  const std::string na = normalize_math_answer(a);
  return !na.empty() && na == normalize_math_answer(b);
}

}  // namespace handoff
