#include "tasks/wordmath_task.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <vector>

#include "common/error.h"
#include "protocol/response.h"
#include "tasks/answer.h"
#include "tasks/sampling.h"

namespace handoff {

namespace {

// What a sentence does to the running value.
enum class Kind {
  kStart,         // value = {n}
  kStartProduct,  // value = {n} * {m}   (one equation)
  kAdd,           // + {n}
  kSub,           // - {n}
  kTimes,         // * {n}
  kDouble,        // * 2
  kTriple,        // * 3
  kHalf,          // / 2  (GSM8K's favourite "half as many"; drawn only on even values)
  kQuestion,      // the final question, no arithmetic
};

struct Phrase {
  Kind kind;
  const char* text;  // placeholders: {N} name, {P} He/She, {p} he/she, {H} his/her, {n} {m} numbers
};

struct Scenario {
  std::vector<Phrase> phrases;
};

// Phrases must differ from each other in their literal words (placeholders aside), or a sentence could
// match the wrong one; the tests rebuild and check the solution of every sampled problem.
const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> kScenarios = {
      {{{Kind::kStart, "{N} picks {n} apples."},
        {Kind::kStartProduct, "{N} picks {n} apples from each of {m} trees."},
        {Kind::kAdd, "{P} picks {n} more apples."},
        {Kind::kSub, "{P} gives {n} apples to {H} neighbor."},
        {Kind::kSub, "{P} eats {n} of them."},
        {Kind::kHalf, "{P} gives half of them to {H} sister."},
        {Kind::kQuestion, "How many apples does {N} have now?"}}},
      {{{Kind::kStart, "{N} has ${n} in {H} piggy bank."},
        {Kind::kStartProduct, "{N} earns ${n} an hour and works {m} hours."},
        {Kind::kAdd, "{P} gets ${n} from {H} grandmother."},
        {Kind::kSub, "{P} spends ${n} on a book."},
        {Kind::kDouble, "{P} doubles {H} money by selling old toys."},
        {Kind::kQuestion, "How much money does {N} have now?"}}},
      {{{Kind::kStart, "A bus leaves the station with {n} passengers."},
        {Kind::kAdd, "At the next stop, {n} people get on."},
        {Kind::kSub, "At the next stop, {n} people get off."},
        {Kind::kQuestion, "How many passengers are on the bus now?"}}},
      {{{Kind::kStart, "{N} has {n} pencils."},
        {Kind::kStartProduct, "{N} buys {n} boxes of pencils with {m} pencils in each box."},
        {Kind::kAdd, "{P} finds {n} more pencils in {H} desk."},
        {Kind::kSub, "{P} gives {n} pencils to {H} classmates."},
        {Kind::kQuestion, "How many pencils does {N} have now?"}}},
      {{{Kind::kStartProduct, "{N} bakes {n} trays of cookies with {m} cookies on each tray."},
        {Kind::kAdd, "{P} bakes {n} more cookies."},
        {Kind::kSub, "{P} sells {n} cookies at a bake sale."},
        {Kind::kHalf, "{P} gives half of the cookies to {H} neighbors."},
        {Kind::kQuestion, "How many cookies does {N} have left?"}}},
      {{{Kind::kStart, "{N} has {n} stamps in {H} album."},
        {Kind::kAdd, "{P} buys {n} more stamps."},
        {Kind::kSub, "{P} trades away {n} stamps."},
        {Kind::kDouble, "{P} doubles {H} collection."},
        {Kind::kTriple, "{P} triples {H} collection."},
        {Kind::kQuestion, "How many stamps does {N} have now?"}}},
      {{{Kind::kStartProduct, "A farmer plants {n} rows of trees with {m} trees in each row."},
        {Kind::kAdd, "The farmer plants {n} more trees."},
        {Kind::kSub, "A storm knocks down {n} trees."},
        {Kind::kQuestion, "How many trees are on the farm now?"}}},
      {{{Kind::kStart, "A tank holds {n} liters of water."},
        {Kind::kAdd, "Then {n} liters of rain fall into it."},
        {Kind::kSub, "A gardener uses {n} liters to water the plants."},
        {Kind::kHalf, "Half of the water leaks out."},
        {Kind::kTimes, "The tank is then filled until it holds {n} times as much water."},
        {Kind::kQuestion, "How many liters of water are in the tank now?"}}},
      {{{Kind::kStart, "{N} borrows a book with {n} pages."},
        {Kind::kSub, "{P} reads {n} pages on the bus."},
        {Kind::kSub, "{P} reads {n} more pages before bed."},
        {Kind::kQuestion, "How many pages are left to read?"}}},
  };
  return kScenarios;
}

struct Person {
  const char* name;
  bool she;
};
const Person kPeople[] = {{"Tom", false}, {"Sara", true},  {"Ben", false}, {"Mia", true},   {"Liam", false},
                          {"Emma", true}, {"Noah", false}, {"Ava", true},  {"Omar", false}, {"Lena", true}};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

std::string render(const Phrase& ph, const Person& who, int n, int m) {
  std::string s = ph.text;
  s = replace_all(s, "{N}", who.name);
  s = replace_all(s, "{P}", who.she ? "She" : "He");
  s = replace_all(s, "{p}", who.she ? "she" : "he");
  s = replace_all(s, "{H}", who.she ? "her" : "his");
  s = replace_all(s, "{n}", std::to_string(n));
  return replace_all(s, "{m}", std::to_string(m));
}

// Words, with . , ? $ as tokens of their own, so "$12." and "{n}." split alike in prompts and templates.
std::vector<std::string> tokenize(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) out.push_back(cur);
    cur.clear();
  };
  for (char c : s) {
    if (c == ' ') {
      flush();
    } else if (c == '.' || c == ',' || c == '?' || c == '$') {
      flush();
      out.push_back(std::string(1, c));
    } else {
      cur.push_back(c);
    }
  }
  flush();
  return out;
}

bool all_of_class(const std::string& t, bool digits) {
  return !t.empty() && std::all_of(t.begin(), t.end(), [&](char c) {
    return digits ? (c >= '0' && c <= '9') : ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
  });
}

// Matches one sentence against a template; fills the numbers {n}, {m} (0 when absent).
bool match(const std::vector<std::string>& pattern, const std::vector<std::string>& sentence, int* n,
           int* m) {
  if (pattern.size() != sentence.size()) return false;
  *n = *m = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const std::string& p = pattern[i];
    const std::string& t = sentence[i];
    if (p == "{n}" || p == "{m}") {
      if (!all_of_class(t, true) || t.size() > 6) return false;
      (p == "{n}" ? *n : *m) = std::stoi(t);
    } else if (p == "{N}" || p == "{P}" || p == "{p}" || p == "{H}") {
      if (!all_of_class(t, false)) return false;
    } else if (p != t) {
      return false;
    }
  }
  return true;
}

bool is_step(Kind k) {
  return k != Kind::kStart && k != Kind::kStartProduct && k != Kind::kQuestion;
}

// Whether a step phrase can be applied to `value` without leaving [1, kMaxValue]; draws its number if so.
bool try_step(std::mt19937_64& rng, Kind k, int value, int* n) {
  const int max = WordMathTask::kMaxValue;
  switch (k) {
    case Kind::kAdd:
      if (value + 2 > max) return false;
      *n = draw_int(rng, 2, std::min(25, max - value));
      return true;
    case Kind::kSub:  // at least 2 ("gives 1 pencils" reads badly), and the value stays >= 1
      if (value < 3) return false;
      *n = draw_int(rng, 2, std::min(25, value - 1));
      return true;
    case Kind::kTimes:
      if (value * 2 > max) return false;
      *n = draw_int(rng, 2, std::min(4, max / value));
      return true;
    case Kind::kDouble:
      return value * 2 <= max;
    case Kind::kTriple:
      return value * 3 <= max;
    case Kind::kHalf:
      return value % 2 == 0;
    default:
      return false;
  }
}

int apply(Kind k, int value, int n) {
  switch (k) {
    case Kind::kAdd:
      return value + n;
    case Kind::kSub:
      return value - n;
    case Kind::kTimes:
      return value * n;
    case Kind::kDouble:
      return value * 2;
    case Kind::kTriple:
      return value * 3;
    case Kind::kHalf:
      return value / 2;
    default:
      return value;
  }
}

// The equation a step contributes, e.g. "8-2=6".
std::string equation(Kind k, int value, int n) {
  std::string lhs = std::to_string(value);
  switch (k) {
    case Kind::kAdd:
      lhs += "+" + std::to_string(n);
      break;
    case Kind::kSub:
      lhs += "-" + std::to_string(n);
      break;
    case Kind::kTimes:
      lhs += "*" + std::to_string(n);
      break;
    case Kind::kDouble:
      lhs += "*2";
      break;
    case Kind::kTriple:
      lhs += "*3";
      break;
    case Kind::kHalf:
      lhs += "/2";
      break;
    default:
      break;
  }
  return lhs + "=" + std::to_string(apply(k, value, n));
}

// One attempt; nullopt when the walk got stuck (no step fits the value).
std::optional<Problem> draw_problem(std::mt19937_64& rng, int steps, const std::string& task_name) {
  const auto& all = scenarios();
  const Scenario& sc = all[draw_int(rng, 0, static_cast<int>(all.size()) - 1)];
  const Person& who = kPeople[draw_int(rng, 0, static_cast<int>(std::size(kPeople)) - 1)];
  std::vector<const Phrase*> starts, moves;
  const Phrase* question = nullptr;
  for (const Phrase& ph : sc.phrases) {
    if (ph.kind == Kind::kStart || ph.kind == Kind::kStartProduct) starts.push_back(&ph);
    if (is_step(ph.kind)) moves.push_back(&ph);
    if (ph.kind == Kind::kQuestion) question = &ph;
  }
  const Phrase* start = starts[draw_int(rng, 0, static_cast<int>(starts.size()) - 1)];
  int value = 0, done = 0;
  std::string prompt;
  if (start->kind == Kind::kStart) {
    value = draw_int(rng, 10, 60);
    prompt = render(*start, who, value, 0);
  } else {
    int n = draw_int(rng, 2, 9), m = draw_int(rng, 2, 12);
    value = n * m;
    done = 1;
    prompt = render(*start, who, n, m);
  }
  for (; done < steps; ++done) {
    std::vector<std::pair<const Phrase*, int>> options;  // phrase and its drawn number
    for (const Phrase* ph : moves) {
      int n = 0;
      if (try_step(rng, ph->kind, value, &n)) options.emplace_back(ph, n);
    }
    if (options.empty()) return std::nullopt;
    auto [ph, n] = options[draw_int(rng, 0, static_cast<int>(options.size()) - 1)];
    prompt += " " + render(*ph, who, n, 0);
    value = apply(ph->kind, value, n);
  }
  prompt += " " + render(*question, who, 0, 0);
  return Problem{task_name, prompt, std::to_string(value), steps};
}

}  // namespace

Problem WordMathTask::sample(std::mt19937_64& rng, int difficulty, Split split) const {
  return sample_in_split(*this, difficulty, split, [&] {
    for (int attempt = 0; attempt < 1000; ++attempt)
      if (auto p = draw_problem(rng, difficulty, name())) return *p;
    throw Error("wordmath: no problem with " + std::to_string(difficulty) + " steps in 1000 draws");
  });
}

bool WordMathTask::verify(const Problem& problem, const std::string& answer_text) const {
  return numeric_answers_equal(answer_text, problem.answer);
}

std::string WordMathTask::solution(const Problem& problem) const {
  // Split the prompt into sentences at '.' and '?' tokens, then match each against every template.
  std::vector<std::string> tokens = tokenize(problem.prompt);
  std::vector<std::vector<std::string>> sentences(1);
  for (const std::string& t : tokens) {
    sentences.back().push_back(t);
    if (t == "." || t == "?") sentences.emplace_back();
  }
  if (sentences.back().empty()) sentences.pop_back();

  std::string out;
  int value = 0;
  bool started = false;
  for (const auto& sentence : sentences) {
    const Phrase* found = nullptr;
    int n = 0, m = 0;
    for (const Scenario& sc : scenarios()) {
      for (const Phrase& ph : sc.phrases)
        if (match(tokenize(ph.text), sentence, &n, &m)) {
          found = &ph;
          break;
        }
      if (found) break;
    }
    if (!found)
      throw Error("wordmath: no template matches a sentence of '" + problem.prompt + "'",
                  "solution() only handles prompts made by WordMathTask::sample");
    if (found->kind == Kind::kQuestion) break;
    if (found->kind == Kind::kStart) {
      value = n;
    } else if (found->kind == Kind::kStartProduct) {
      value = n * m;
      out += std::to_string(n) + "*" + std::to_string(m) + "=" + std::to_string(value) + " ";
    } else {
      if (!started) throw Error("wordmath: prompt '" + problem.prompt + "' has a step before its start");
      out += equation(found->kind, value, n) + " ";
      value = apply(found->kind, value, n);
    }
    started = true;
  }
  if (!started) throw Error("wordmath: prompt '" + problem.prompt + "' has no start sentence");
  return out + std::string(kAnswerPrefix) + " " + std::to_string(value);
}

}  // namespace handoff
