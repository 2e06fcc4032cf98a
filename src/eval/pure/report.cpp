#include "eval/pure/report.h"

#include <charconv>
#include <cmath>

namespace handoff::eval {

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "n/a";
  char buf[512];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  std::string s(buf, res.ptr);
  if (s.find_first_not_of("-0.") == std::string::npos && s[0] == '-') s.erase(0, 1);  // "-0.0" → "0.0"
  return s;
}

std::string markdown_cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out;
}

namespace {

std::string one_decimal(double v) {
  return fixed(v, 1);
}

}  // namespace

std::string methods_table_markdown(const std::vector<MethodResult>& methods, const MethodResult& device_only,
                                   const MethodResult& cloud_only, const BootstrapOptions& options) {
  const double a_dev = accuracy(device_only), a_cloud = accuracy(cloud_only);
  std::string level = one_decimal(100 * options.level);  // "95.0" → "95"
  if (level.size() > 2 && level.compare(level.size() - 2, 2, ".0") == 0) level.resize(level.size() - 2);
  std::string out = "| method | accuracy % [" + level +
                    " % CI] | call rate % | gap recovered % | device tokens/query | cloud tokens/query | "
                    "device ms/query | cloud ms/query |\n|---|---|---|---|---|---|---|---|\n";
  for (const MethodResult& r : methods) {
    const double acc = accuracy(r);
    const ConfidenceInterval ci = accuracy_ci(r, options);
    const GapRecovered gap = gap_recovered(acc, a_dev, a_cloud);
    out += "| " + markdown_cell(r.method) + " | " + one_decimal(100 * acc) + " [" + one_decimal(100 * ci.lo) +
           ", " + one_decimal(100 * ci.hi) + "] | " + one_decimal(100 * call_rate(r)) + " | " +
           (gap.defined ? one_decimal(100 * gap.value) : "n/a") + " | " + one_decimal(r.device_tokens_mean) +
           " | " + one_decimal(r.cloud_tokens_mean) + " | " + one_decimal(r.device_ms_mean) + " | " +
           one_decimal(r.cloud_ms_mean) + " |\n";
  }
  return out;
}

nlohmann::json methods_json(const std::vector<MethodResult>& methods, const MethodResult& device_only,
                            const MethodResult& cloud_only, const BootstrapOptions& options) {
  const double a_dev = accuracy(device_only), a_cloud = accuracy(cloud_only);
  nlohmann::json out = nlohmann::json::array();
  for (const MethodResult& r : methods) {
    const double acc = accuracy(r);
    const ConfidenceInterval ci = accuracy_ci(r, options);
    const GapRecovered gap = gap_recovered(acc, a_dev, a_cloud);
    nlohmann::json slices = nlohmann::json::object();
    for (const DifficultySlice& d : by_difficulty(r))
      slices[std::to_string(d.difficulty)] = {{"accuracy", d.accuracy}, {"call_rate", d.call_rate}};
    out.push_back({{"method", r.method},
                   {"accuracy", acc},
                   {"ci95", {ci.lo, ci.hi}},
                   {"call_rate", call_rate(r)},
                   {"gap_recovered", gap.defined ? nlohmann::json(gap.value) : nlohmann::json()},
                   {"device_tokens_per_query", r.device_tokens_mean},
                   {"cloud_tokens_per_query", r.cloud_tokens_mean},
                   {"device_ms_per_query", r.device_ms_mean},
                   {"cloud_ms_per_query", r.cloud_ms_mean},
                   {"by_difficulty", slices}});
  }
  return out;
}

}  // namespace handoff::eval
