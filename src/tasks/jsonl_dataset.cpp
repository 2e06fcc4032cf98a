#include "tasks/jsonl_dataset.h"

#include <cstdlib>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tasks/answer.h"
#include "tasks/math_answer.h"

namespace handoff {

namespace {

int count_solution_lines(const std::string& worked) {
  int n = 0;
  size_t start = 0;
  while (start <= worked.size()) {
    size_t nl = worked.find('\n', start);
    std::string line = worked.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (!trim(line).empty()) ++n;
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return n;
}

// Calls `each(where, object)` for every non-blank line of a JSONL file; `where` is "path:line".
void for_each_json_line(const std::string& path,
                        const std::function<void(const std::string&, const nlohmann::json&)>& each) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open dataset " + path, "check the path");
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(where + ": malformed JSON line (" + e.what() + ")", "each line must be one JSON object");
    }
    if (!j.is_object())
      throw Error(where + ": line is not a JSON object", "each line must be one JSON object");
    each(where, j);
  }
  if (in.bad()) throw Error("error while reading dataset " + path);
}

void require_strings(const std::string& where, const nlohmann::json& j,
                     std::initializer_list<const char*> fields) {
  std::string all;
  for (const char* f : fields) all += std::string(all.empty() ? "" : " and ") + "\"" + f + "\"";
  for (const char* field : fields)
    if (!j.contains(field) || !j[field].is_string())
      throw Error(where + ": missing or non-string field \"" + field + "\"",
                  "each line needs string fields " + all);
}

}  // namespace

std::vector<Problem> load_jsonl_dataset(const std::string& path, const std::string& task_name) {
  std::vector<Problem> out;
  for_each_json_line(path, [&](const std::string& where, const nlohmann::json& j) {
    require_strings(where, j, {"question", "answer"});
    const std::string answer = j["answer"].get<std::string>();
    size_t mark = answer.rfind("####");
    if (mark == std::string::npos)
      throw Error(where + ": answer has no \"####\"", "GSM8K answers end with '#### <final answer>'");
    std::string final_answer;
    for (char c : trim(answer.substr(mark + 4)))
      if (c != ',') final_answer.push_back(c);
    if (final_answer.empty())
      throw Error(where + ": nothing after \"####\"", "put the final answer after '####'");
    out.push_back(Problem{task_name, j["question"].get<std::string>(), final_answer,
                          count_solution_lines(answer.substr(0, mark)), where});
  });
  if (out.empty()) throw Error("dataset " + path + " has no problems", "expected one JSON object per line");
  return out;
}

std::vector<Problem> load_math_jsonl(const std::string& path, const std::string& task_name) {
  std::vector<Problem> out;
  for_each_json_line(path, [&](const std::string& where, const nlohmann::json& j) {
    require_strings(where, j, {"problem", "solution"});
    std::string answer;
    if (j.contains("answer") && j["answer"].is_string()) {
      answer = trim(j["answer"].get<std::string>());
    } else if (auto boxed = last_boxed(j["solution"].get<std::string>())) {
      answer = trim(*boxed);
    } else {
      throw Error(where + ": solution has no \\boxed{...} answer (or its braces never close)",
                  "MATH solutions end with the final answer in \\boxed{}");
    }
    if (answer.empty()) throw Error(where + ": the \\boxed{} answer is empty");
    int level = 0;
    if (j.contains("level")) {
      const auto& l = j["level"];
      if (l.is_number_integer()) {
        level = l.get<int>();
      } else if (l.is_string()) {
        const std::string text = l.get<std::string>();  // "Level 3"; "Level ?" in a few MATH records
        const size_t digit = text.find_first_of("0123456789");
        if (digit != std::string::npos) level = std::atoi(text.c_str() + digit);
      }
    }
    out.push_back(Problem{task_name, j["problem"].get<std::string>(), answer, level, where});
  });
  if (out.empty()) throw Error("dataset " + path + " has no problems", "expected one JSON object per line");
  return out;
}

}  // namespace handoff
