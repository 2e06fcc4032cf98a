#pragma once
// The comparison table of report.md and the methods part of results.json (paper.md §5, Table 1): per method
// accuracy with its bootstrap interval, cloud-call rate, share of the device→cloud gap recovered, tokens and
// latency per query.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/pure/bootstrap.h"
#include "eval/pure/metrics.h"

namespace handoff::eval {

// A table cell: '|' escaped, line breaks as spaces.
std::string markdown_cell(const std::string& text);

// A markdown table, one row per entry of `methods` in the given order (include the anchors in `methods` to
// get their rows too). Columns:
//   method | accuracy % [95 % CI] | call rate % | gap recovered % | device tokens/query | cloud tokens/query
//   | device ms/query | cloud ms/query
// Accuracy, its interval, call rate and gap recovered in percent with one decimal ("65.0 [58.4, 71.5]"; the
// interval is a percentile bootstrap, so not symmetric in general), gap recovered "n/a" when undefined
// (metrics.h), tokens and milliseconds with one decimal (the latency split: device first, then the cloud).
// The CI header names options.level. '|' in method names is escaped. Ends with a newline. Throws Error on an
// invalid result (metrics.h validate).
std::string methods_table_markdown(const std::vector<MethodResult>& methods, const MethodResult& device_only,
                                   const MethodResult& cloud_only, const BootstrapOptions& options = {});

// The same numbers unrounded, as results.json's "methods" array, one object per method:
//   {"method", "accuracy", "ci95": [lo, hi], "call_rate", "gap_recovered" (null when undefined),
//    "device_tokens_per_query", "cloud_tokens_per_query", "device_ms_per_query", "cloud_ms_per_query",
//    "by_difficulty": {"<difficulty>": {"accuracy", "call_rate"}, …}}
nlohmann::json methods_json(const std::vector<MethodResult>& methods, const MethodResult& device_only,
                            const MethodResult& cloud_only, const BootstrapOptions& options = {});

// Locale-independent fixed-point text with `decimals` digits ("n/a" when not finite; never "-0.0").
std::string fixed(double v, int decimals);

}  // namespace handoff::eval
