#include "tasks/jsonl_dataset.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tasks/answer.h"

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

}  // namespace

std::vector<Problem> load_jsonl_dataset(const std::string& path, const std::string& task_name) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open dataset " + path, "check the path");
  std::vector<Problem> out;
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
    for (const char* field : {"question", "answer"})
      if (!j.contains(field) || !j[field].is_string())
        throw Error(where + ": missing or non-string field \"" + field + "\"",
                    "each line needs string fields \"question\" and \"answer\"");
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
                          count_solution_lines(answer.substr(0, mark))});
  }
  if (in.bad()) throw Error("error while reading dataset " + path);
  if (out.empty()) throw Error("dataset " + path + " has no problems", "expected one JSON object per line");
  return out;
}

}  // namespace handoff
