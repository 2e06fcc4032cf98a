// The torch-free evaluation toolkit (src/eval/pure/): metrics and gap recovered (paper.md §5), bootstrap
// intervals, router calibration to a call rate (paper.md §2), the SVG writer and the report table, on
// hand-made and simulated inputs.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "eval/pure/bootstrap.h"
#include "eval/pure/metrics.h"
#include "eval/pure/report.h"
#include "eval/pure/svg_plot.h"
#include "route/pure/calibration.h"

using namespace handoff;
using namespace handoff::eval;
using namespace handoff::route;

namespace {

const double kNan = std::numeric_limits<double>::quiet_NaN();

// Library-independent draws for the simulations (std::*_distribution differ between standard libraries).
double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}
bool bernoulli(std::mt19937_64& rng, double p) {
  return uniform01(rng) < p;
}
double standard_normal(std::mt19937_64& rng) {  // Box–Muller
  const double u = 1.0 - uniform01(rng), v = uniform01(rng);
  return std::sqrt(-2.0 * std::log(u)) * std::cos(2 * 3.14159265358979323846 * v);
}

// `k` ones then zeros, n in all.
std::vector<uint8_t> flags(size_t k, size_t n) {
  std::vector<uint8_t> f(n, 0);
  for (size_t i = 0; i < k; ++i) f[i] = 1;
  return f;
}

MethodResult make_result(const std::string& name, size_t correct, size_t called, size_t n) {
  MethodResult r;
  r.method = name;
  r.correct = flags(correct, n);
  r.called_cloud = flags(called, n);
  return r;
}

Series make_series(const std::string& name, std::vector<double> x, std::vector<double> y,
                   std::vector<double> y_lo = {}, std::vector<double> y_hi = {}) {
  Series s;
  s.name = name;
  s.x = std::move(x);
  s.y = std::move(y);
  s.y_lo = std::move(y_lo);
  s.y_hi = std::move(y_hi);
  return s;
}

std::string one_decimal(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// ------------------------------------------------------------ a minimal XML well-formedness checker
// Enough of XML 1.0 for our SVGs: declaration, comments, processing instructions, elements with quoted
// attributes (no duplicates, no '<'), matched tags, one root, character data with only the five predefined
// or numeric entity references. Returns "" when well-formed, else what is wrong and where.
class XmlChecker {
 public:
  explicit XmlChecker(const std::string& s) : s_(s) {}

  std::string check() {
    if (s_.compare(0, 5, "<?xml") == 0 && !skip_past("?>")) return fail("unterminated XML declaration");
    std::vector<std::string> open;
    bool root_seen = false;
    while (i_ < s_.size()) {
      if (s_[i_] != '<') {
        const size_t end = std::min(s_.find('<', i_), s_.size());
        if (open.empty()) {
          for (size_t j = i_; j < end; ++j)
            if (!std::isspace(static_cast<unsigned char>(s_[j])))
              return fail("text outside the root element");
        } else if (std::string e = check_entities(i_, end); !e.empty()) {
          return e;
        }
        i_ = end;
      } else if (s_.compare(i_, 4, "<!--") == 0) {
        if (!skip_past("-->")) return fail("unterminated comment");
      } else if (s_.compare(i_, 2, "<?") == 0) {
        if (!skip_past("?>")) return fail("unterminated processing instruction");
      } else if (s_.compare(i_, 2, "</") == 0) {
        i_ += 2;
        const std::string name = read_name();
        skip_space();
        if (name.empty() || i_ >= s_.size() || s_[i_] != '>') return fail("malformed end tag");
        ++i_;
        if (open.empty() || open.back() != name) return fail("end tag </" + name + "> does not match");
        open.pop_back();
      } else {
        ++i_;
        const std::string name = read_name();
        if (name.empty()) return fail("malformed start tag");
        if (open.empty() && root_seen) return fail("a second root element <" + name + ">");
        root_seen = true;
        std::set<std::string> attrs;
        for (;;) {
          const size_t before = i_;
          skip_space();
          if (i_ >= s_.size()) return fail("unterminated start tag <" + name + ">");
          if (s_.compare(i_, 2, "/>") == 0) {
            i_ += 2;
            break;
          }
          if (s_[i_] == '>') {
            ++i_;
            open.push_back(name);
            break;
          }
          if (i_ == before) return fail("no space before an attribute of <" + name + ">");
          const std::string attr = read_name();
          if (attr.empty()) return fail("malformed attribute in <" + name + ">");
          if (!attrs.insert(attr).second) return fail("duplicate attribute " + attr);
          skip_space();
          if (i_ >= s_.size() || s_[i_] != '=') return fail("attribute " + attr + " without '='");
          ++i_;
          skip_space();
          if (i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\'')) return fail("unquoted attribute " + attr);
          const char quote = s_[i_++];
          const size_t end = s_.find(quote, i_);
          if (end == std::string::npos) return fail("unterminated attribute " + attr);
          if (s_.find('<', i_) < end) return fail("'<' inside attribute " + attr);
          if (std::string e = check_entities(i_, end); !e.empty()) return e;
          i_ = end + 1;
        }
      }
    }
    if (!open.empty()) return fail("unclosed element <" + open.back() + ">");
    if (!root_seen) return fail("no root element");
    return "";
  }

 private:
  std::string fail(const std::string& what) const { return what + " at offset " + std::to_string(i_); }
  bool skip_past(const char* end) {
    const size_t at = s_.find(end, i_);
    if (at == std::string::npos) return false;
    i_ = at + std::string(end).size();
    return true;
  }
  void skip_space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  static bool name_char(char c, bool first) {
    const unsigned char u = static_cast<unsigned char>(c);
    return std::isalpha(u) || c == '_' || c == ':' || u >= 0x80 ||
           (!first && (std::isdigit(u) || c == '-' || c == '.'));
  }
  std::string read_name() {
    const size_t start = i_;
    while (i_ < s_.size() && name_char(s_[i_], i_ == start)) ++i_;
    return s_.substr(start, i_ - start);
  }
  std::string check_entities(size_t from, size_t to) const {
    for (size_t j = from; j < to; ++j) {
      const unsigned char c = static_cast<unsigned char>(s_[j]);
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
        return "control character at offset " + std::to_string(j);
      if (c != '&') continue;
      const size_t semi = s_.find(';', j);
      if (semi == std::string::npos || semi >= to) return "bare '&' at offset " + std::to_string(j);
      const std::string ref = s_.substr(j + 1, semi - j - 1);
      static const std::set<std::string> predefined = {"lt", "gt", "amp", "quot", "apos"};
      bool numeric = ref.size() > 1 && ref[0] == '#';
      for (size_t k = 1; numeric && k < ref.size(); ++k)
        numeric = std::isdigit(static_cast<unsigned char>(ref[k]));
      if (!predefined.count(ref) && !numeric)
        return "unknown entity &" + ref + "; at offset " + std::to_string(j);
      j = semi;
    }
    return "";
  }

  const std::string& s_;
  size_t i_ = 0;
};

std::string xml_error(const std::string& doc) {
  return XmlChecker(doc).check();
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

// ---------------------------------------------------------------- metrics

TEST(EvalPureMetrics, GapRecoveredFromHandMadeAccuracies) {
  const GapRecovered g = gap_recovered(0.65, 0.4, 0.9);
  ASSERT_TRUE(g.defined);
  EXPECT_NEAR(g.value, 0.5, 1e-12);
  EXPECT_NEAR(gap_recovered(0.4, 0.4, 0.9).value, 0.0, 1e-12);
  EXPECT_NEAR(gap_recovered(0.9, 0.4, 0.9).value, 1.0, 1e-12);
  // Not clamped: worse than the device alone, better than the cloud alone.
  EXPECT_NEAR(gap_recovered(0.3, 0.4, 0.9).value, -0.2, 1e-12);
  EXPECT_NEAR(gap_recovered(0.95, 0.4, 0.9).value, 1.1, 1e-12);
  // Paper Table 1 (Qwen2.5-1.5B): GAPG 80.4, device 56.1, cloud 93.8 → ≈ 65 %.
  EXPECT_NEAR(gap_recovered(80.4, 56.1, 93.8).value, 0.645, 0.001);
}

TEST(EvalPureMetrics, GapRecoveredUndefinedWhenTheCloudIsNotBetter) {
  for (const auto& [dev, cloud] : {std::pair{0.9, 0.9}, {0.9, 0.4}, {kNan, 0.9}}) {
    const GapRecovered g = gap_recovered(0.65, dev, cloud);
    EXPECT_FALSE(g.defined) << dev << " " << cloud;
    EXPECT_TRUE(std::isnan(g.value));
  }
}

TEST(EvalPureMetrics, AccuracyCallRateAndGapFromResults) {
  const MethodResult dev = make_result("device-only", 8, 0, 20),
                     cloud = make_result("cloud-only", 18, 20, 20);
  const MethodResult m = make_result("GAPG", 13, 6, 20);
  EXPECT_DOUBLE_EQ(accuracy(m), 0.65);
  EXPECT_DOUBLE_EQ(call_rate(m), 0.3);
  const GapRecovered g = gap_recovered(m, dev, cloud);
  ASSERT_TRUE(g.defined);
  EXPECT_NEAR(g.value, 0.5, 1e-12);
  EXPECT_FALSE(gap_recovered(m, dev, dev).defined);
  MethodResult timed = m;
  timed.device_ms_mean = 10;
  timed.cloud_ms_mean = 5.5;
  EXPECT_DOUBLE_EQ(latency_ms_mean(timed), 15.5);
}

TEST(EvalPureMetrics, PerDifficultyBreakdown) {
  MethodResult r;
  r.method = "m";
  r.correct = {1, 0, 1, 1, 0, 0};
  r.called_cloud = {0, 1, 1, 0, 0, 1};
  r.difficulty = {3, 1, 3, 1, 2, 3};
  const auto slices = by_difficulty(r);
  ASSERT_EQ(slices.size(), 3u);
  EXPECT_EQ(slices[0].difficulty, 1);
  EXPECT_EQ(slices[0].count, 2u);
  EXPECT_DOUBLE_EQ(slices[0].accuracy, 0.5);
  EXPECT_DOUBLE_EQ(slices[0].call_rate, 0.5);
  EXPECT_EQ(slices[1].difficulty, 2);
  EXPECT_DOUBLE_EQ(slices[1].accuracy, 0.0);
  EXPECT_EQ(slices[2].difficulty, 3);
  EXPECT_EQ(slices[2].count, 3u);
  EXPECT_DOUBLE_EQ(slices[2].accuracy, 2.0 / 3);
  EXPECT_DOUBLE_EQ(slices[2].call_rate, 2.0 / 3);
  r.difficulty.clear();
  EXPECT_TRUE(by_difficulty(r).empty());
}

TEST(EvalPureMetrics, InvalidResultsThrow) {
  MethodResult r = make_result("m", 1, 1, 4);
  r.called_cloud.pop_back();
  EXPECT_THROW(accuracy(r), Error);
  EXPECT_THROW(call_rate(r), Error);
  r = make_result("m", 1, 1, 4);
  r.difficulty = {1, 2};
  EXPECT_THROW(by_difficulty(r), Error);
  EXPECT_THROW(accuracy(make_result("empty", 0, 0, 0)), Error);
  EXPECT_THROW(accuracy_ci(make_result("empty", 0, 0, 0)), Error);
}

TEST(EvalPureMetrics, AccuracyCiBracketsTheAccuracy) {
  const MethodResult m = make_result("m", 65, 30, 100);
  const ConfidenceInterval ci = accuracy_ci(m);
  EXPECT_DOUBLE_EQ(ci.mean, 0.65);
  EXPECT_LT(ci.lo, 0.65);
  EXPECT_GT(ci.hi, 0.65);
  EXPECT_DOUBLE_EQ(ci.level, 0.95);
}

// ---------------------------------------------------------------- bootstrap

TEST(BootstrapCi, CoversTheKnownMeanWithTheNormalWidth) {
  const double p = 0.3;
  const size_t n = 200;
  const int datasets = 200;
  std::mt19937_64 rng(2024);
  int covered = 0;
  double width_sum = 0;
  for (int d = 0; d < datasets; ++d) {
    std::vector<uint8_t> x(n);
    for (auto& v : x) v = bernoulli(rng, p);
    BootstrapOptions o;
    o.seed = 1000 + d;
    const ConfidenceInterval ci = bootstrap_mean_ci(x, o);
    covered += ci.lo <= p && p <= ci.hi;
    const double width = ci.hi - ci.lo;
    width_sum += width;
    // Each interval against the normal approximation at its own p̂.
    const double normal_here = 2 * 1.96 * std::sqrt(ci.mean * (1 - ci.mean) / n);
    EXPECT_NEAR(width, normal_here, 0.2 * normal_here) << "dataset " << d;
  }
  EXPECT_GE(covered, 0.9 * datasets);
  const double normal = 2 * 1.96 * std::sqrt(p * (1 - p) / n);
  EXPECT_NEAR(width_sum / datasets, normal, 0.2 * normal);
}

TEST(BootstrapCi, DeterministicBySeed) {
  std::vector<double> x;
  for (int i = 0; i < 50; ++i) x.push_back(std::sin(i));
  BootstrapOptions o;
  o.seed = 11;
  const ConfidenceInterval a = bootstrap_mean_ci(x, o), b = bootstrap_mean_ci(x, o);
  EXPECT_EQ(a.lo, b.lo);
  EXPECT_EQ(a.hi, b.hi);
  o.seed = 12;
  const ConfidenceInterval c = bootstrap_mean_ci(x, o);
  EXPECT_TRUE(c.lo != a.lo || c.hi != a.hi);
  // 0/1 outcomes and their double form draw the same indices.
  const std::vector<uint8_t> f = {1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1};
  const std::vector<double> fd(f.begin(), f.end());
  EXPECT_EQ(bootstrap_mean_ci(f).lo, bootstrap_mean_ci(fd).lo);
  EXPECT_EQ(bootstrap_mean_ci(f).hi, bootstrap_mean_ci(fd).hi);
}

TEST(BootstrapCi, PinnedValuesAreTheSameOnEveryStandardLibrary) {
  // mt19937_64's sequence is fixed by the standard and uniform_index is ours, so these never change.
  std::mt19937_64 rng(1);
  std::vector<uint64_t> draws;
  for (int i = 0; i < 8; ++i) draws.push_back(uniform_index(rng, 10));
  EXPECT_EQ(draws, (std::vector<uint64_t>{1, 1, 4, 0, 3, 9, 4, 0}));
  const ConfidenceInterval ci = bootstrap_mean_ci(flags(30, 100));
  EXPECT_DOUBLE_EQ(ci.lo, 0.21);
  EXPECT_DOUBLE_EQ(ci.hi, 0.39);
}

TEST(BootstrapCi, UniformIndexIsInRangeAndRoughlyUniform) {
  std::mt19937_64 rng(5);
  std::vector<int> hist(3, 0);
  for (int i = 0; i < 30000; ++i) ++hist.at(uniform_index(rng, 3));
  for (int h : hist) EXPECT_NEAR(h, 10000, 400);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(uniform_index(rng, 1), 0u);
  EXPECT_THROW(uniform_index(rng, 0), Error);
}

TEST(BootstrapCi, EdgeCasesAndBadInput) {
  const ConfidenceInterval c = bootstrap_mean_ci(std::vector<double>(10, 2.5));
  EXPECT_DOUBLE_EQ(c.lo, 2.5);
  EXPECT_DOUBLE_EQ(c.hi, 2.5);
  EXPECT_THROW(bootstrap_mean_ci(std::vector<double>{}), Error);
  EXPECT_THROW(bootstrap_mean_ci(std::vector<double>{1.0, kNan}), Error);
  BootstrapOptions o;
  o.resamples = 0;
  EXPECT_THROW(bootstrap_mean_ci(flags(1, 2), o), Error);
  o = {};
  o.level = 1.0;
  EXPECT_THROW(bootstrap_mean_ci(flags(1, 2), o), Error);
}

// Two methods right on the same 300 of 400 items, the first also on 20 more: +0.05. Paired, the interval
// excludes 0; the two accuracies' own intervals (about ±0.04 each) overlap, which is why the report pairs.
TEST(BootstrapCi, PairedDifferenceSeesWhatOverlappingIntervalsHide) {
  std::vector<uint8_t> a(400, 0), b(400, 0);
  for (int i = 0; i < 300; ++i) a[i] = b[i] = 1;
  for (int i = 300; i < 320; ++i) a[i] = 1;
  const ConfidenceInterval d = paired_difference_ci(a, b);
  EXPECT_DOUBLE_EQ(d.mean, 0.05);
  EXPECT_GT(d.lo, 0.0);
  EXPECT_LT(d.hi, 0.08);
  const ConfidenceInterval ca = bootstrap_mean_ci(a), cb = bootstrap_mean_ci(b);
  EXPECT_LT(ca.lo, cb.hi);  // unpaired, the intervals overlap
  const ConfidenceInterval same = paired_difference_ci(a, a);
  EXPECT_DOUBLE_EQ(same.lo, 0.0);
  EXPECT_DOUBLE_EQ(same.hi, 0.0);
  const ConfidenceInterval reversed = paired_difference_ci(b, a);
  EXPECT_DOUBLE_EQ(reversed.mean, -0.05);
  EXPECT_LT(reversed.hi, 0.0);
  EXPECT_THROW(paired_difference_ci(a, std::vector<uint8_t>(399, 0)), Error);
  EXPECT_THROW(paired_difference_ci({}, {}), Error);
}

// ---------------------------------------------------------------- calibration

TEST(CalibrationRouting, ThresholdHitsTheTargetRateWithinOneItem) {
  std::mt19937_64 rng(17);
  std::vector<double> scores(10000);
  for (double& s : scores) s = standard_normal(rng);
  const double n = static_cast<double>(scores.size());
  for (double r : {0.1, 0.3, 0.5}) {
    const double t = calibrate_threshold(scores, r);
    size_t above = 0;
    for (uint8_t a : route_above(scores, t)) above += a;
    EXPECT_LE(above / n, r) << r;
    EXPECT_GE(above / n, r - 1 / n) << r;
    size_t top = 0;
    for (uint8_t a : route_top_fraction(scores, r)) top += a;
    EXPECT_EQ(top, static_cast<size_t>(std::llround(r * n))) << r;
  }
}

TEST(CalibrationRouting, TiesGoTowardFewerCalls) {
  const std::vector<double> s = {1, 0, 1, 0, 1, 0, 0, 1, 0, 0};  // four 1s, six 0s
  // r = 0.2 asks for 2 of 10, but the 3rd highest score ties with the top ones: none can be separated.
  EXPECT_EQ(calibrate_threshold(s, 0.2), 1.0);
  EXPECT_EQ(route_above(s, 1.0), std::vector<uint8_t>(10, 0));
  // r = 0.4 separates exactly the four 1s; r = 0.5 cannot add half of the 0s.
  EXPECT_EQ(calibrate_threshold(s, 0.4), 0.0);
  EXPECT_EQ(calibrate_threshold(s, 0.5), 0.0);
  // Top fraction always hits ⌊r·n⌋, tied items in index order.
  EXPECT_EQ(route_top_fraction(s, 0.2), (std::vector<uint8_t>{1, 0, 1, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(route_top_fraction(s, 0.5), (std::vector<uint8_t>{1, 1, 1, 0, 1, 0, 0, 1, 0, 0}));
  EXPECT_EQ(route_top_fraction(std::vector<double>(10, 0.5), 0.3),
            (std::vector<uint8_t>{1, 1, 1, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(CalibrationRouting, EndsOfTheRateRangeAndBadInput) {
  const std::vector<double> s = {0.3, -2, 5, 0.3};
  EXPECT_EQ(route_above(s, calibrate_threshold(s, 0)), std::vector<uint8_t>(4, 0));
  const double all = calibrate_threshold(s, 1);
  EXPECT_TRUE(std::isfinite(all));
  EXPECT_EQ(route_above(s, all), std::vector<uint8_t>(4, 1));
  // 0.29 · 100 = 28.999999999999996 in floating point: still 29 items.
  std::vector<double> hundred(100);
  for (int i = 0; i < 100; ++i) hundred[i] = i;
  EXPECT_EQ(calibrate_threshold(hundred, 0.29), 70.0);
  EXPECT_THROW(calibrate_threshold({}, 0.3), Error);
  EXPECT_THROW(calibrate_threshold({1.0, kNan}, 0.3), Error);
  EXPECT_THROW(calibrate_threshold(s, 1.5), Error);
  EXPECT_THROW(calibrate_threshold(s, kNan), Error);
  EXPECT_THROW(route_top_fraction(s, -0.1), Error);
}

TEST(CalibrationRouting, HandoffCurveOnHandMadeItems) {
  // Hand-off order by score: item 0 (0.9), 3 (0.7), 2 (0.5), 1 (0.1).
  const std::vector<double> scores = {0.9, 0.1, 0.5, 0.7};
  const std::vector<uint8_t> local = {0, 1, 1, 0}, cloud = {1, 1, 0, 1};
  const auto curve = handoff_curve(scores, local, cloud);
  const std::vector<double> want_acc = {0.5, 0.75, 1.0, 0.75, 0.75};
  ASSERT_EQ(curve.size(), 5u);
  for (size_t k = 0; k < 5; ++k) {
    EXPECT_DOUBLE_EQ(curve[k].call_rate, k / 4.0);
    EXPECT_DOUBLE_EQ(curve[k].accuracy, want_acc[k]) << k;
  }
  EXPECT_THROW(handoff_curve(scores, {0, 1}, cloud), Error);
  EXPECT_THROW(handoff_curve(scores, local, cloud, 1), Error);
}

TEST(CalibrationRouting, HandoffCurveIsSubsampledToFiftyPoints) {
  std::mt19937_64 rng(3);
  const size_t n = 1000;
  std::vector<double> scores(n);
  std::vector<uint8_t> local(n), cloud(n);
  size_t local_ok = 0, cloud_ok = 0;
  for (size_t i = 0; i < n; ++i) {
    scores[i] = uniform01(rng);
    local[i] = bernoulli(rng, 0.4);
    cloud[i] = bernoulli(rng, 0.9);
    local_ok += local[i];
    cloud_ok += cloud[i];
  }
  const auto curve = handoff_curve(scores, local, cloud);
  ASSERT_EQ(curve.size(), 50u);
  EXPECT_DOUBLE_EQ(curve.front().call_rate, 0.0);
  EXPECT_DOUBLE_EQ(curve.front().accuracy, local_ok / double(n));
  EXPECT_DOUBLE_EQ(curve.back().call_rate, 1.0);
  EXPECT_DOUBLE_EQ(curve.back().accuracy, cloud_ok / double(n));
  for (size_t j = 1; j < curve.size(); ++j) EXPECT_GT(curve[j].call_rate, curve[j - 1].call_rate);
  // A point agrees with routing the same fraction directly.
  const double rate = curve[15].call_rate;
  const auto route = route_top_fraction(scores, rate);
  size_t ok = 0;
  for (size_t i = 0; i < n; ++i) ok += route[i] ? cloud[i] : local[i];
  EXPECT_DOUBLE_EQ(curve[15].accuracy, ok / double(n));
}

// ---------------------------------------------------------------- SVG

TEST(SvgPlotPure, TheCheckerRejectsMalformedXml) {
  EXPECT_EQ(xml_error("<?xml version=\"1.0\"?>\n<a x=\"1\"><b/>t &amp; u</a>\n"), "");
  EXPECT_NE(xml_error("<a>1 & 2</a>"), "");
  EXPECT_NE(xml_error("<a><b></a></b>"), "");
  EXPECT_NE(xml_error("<a x=\"1\" x=\"2\"/>"), "");
  EXPECT_NE(xml_error("<a x=\"<\"/>"), "");
  EXPECT_NE(xml_error("<a/><b/>"), "");
  EXPECT_NE(xml_error("<a>"), "");
}

TEST(SvgPlotPure, WellFormedWithEverySeriesAndEscapedText) {
  PlotSpec spec;
  spec.title = "accuracy <vs> call rate & budget";
  spec.x_label = "cloud-call rate";
  spec.y_label = "accuracy \"test\"";
  spec.hline = ReferenceLine{0.3, "budget <0.3>"};
  Series gapg = make_series("GAPG (ours) & <friends>", {0.1, 0.3, 0.5}, {0.5, 0.7, 0.8}, {0.45, 0.65, 0.75},
                            {0.55, 0.75, 0.85});
  Series router = make_series("router 'prompt'", {0, 0.25, 0.5, 0.75, 1}, {0.4, 0.6, 0.7, 0.8, 0.9});
  Series point = make_series("device-only", {0}, {0.4});
  point.lines = false;
  spec.series = {gapg, router, point};
  const std::string svg = line_plot(spec);
  EXPECT_EQ(xml_error(svg), "") << svg;
  EXPECT_NE(svg.find("GAPG (ours) &amp; &lt;friends&gt;"), std::string::npos);
  EXPECT_NE(svg.find("router &apos;prompt&apos;"), std::string::npos);
  EXPECT_NE(svg.find(">device-only<"), std::string::npos);
  EXPECT_NE(svg.find("accuracy &lt;vs&gt; call rate &amp; budget"), std::string::npos);
  EXPECT_EQ(svg.find("<vs>"), std::string::npos);
  EXPECT_NE(svg.find("budget &lt;0.3&gt;"), std::string::npos);
  EXPECT_NE(svg.find("accuracy &quot;test&quot;"), std::string::npos);
  EXPECT_EQ(count(svg, "class=\"error-bar\""), 3u);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
  EXPECT_EQ(count(svg, "<polyline"), 2u);  // the markers-only series has none
}

TEST(SvgPlotPure, TrainingCurveWithMissingValuesAndEmptyPlots) {
  PlotSpec spec;
  spec.title = "GAPG training";
  spec.x_label = "step";
  Series acc = make_series("accuracy", {}, {});
  for (int step = 0; step <= 2000; step += 100) {
    acc.x.push_back(step);
    acc.y.push_back(step == 1000 ? kNan : 0.2 + step / 4000.0);
  }
  spec.series = {acc};
  spec.y_min = 0;
  spec.y_max = 1;
  const std::string svg = line_plot(spec);
  EXPECT_EQ(xml_error(svg), "");
  EXPECT_EQ(count(svg, "<polyline"), 2u);  // broken at the missing value
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_NE(svg.find(">2000<"), std::string::npos);
  EXPECT_NE(svg.find(">1.0<"), std::string::npos);
  EXPECT_EQ(xml_error(line_plot(PlotSpec{})), "");
  EXPECT_EQ(xml_escape("a\x01"
                       "b"),
            "a?b");
}

TEST(SvgPlotPure, BadSpecsThrowAndTicksAreRound) {
  PlotSpec spec;
  spec.series = {make_series("s", {1, 2}, {1})};
  EXPECT_THROW(line_plot(spec), Error);
  spec.series = {make_series("s", {1, 2}, {1, 2}, {0.5}, {1.5})};
  EXPECT_THROW(line_plot(spec), Error);
  spec.series = {make_series("s", {1, 2}, {1, 2})};
  spec.y_min = 1;
  spec.y_max = 0;
  EXPECT_THROW(line_plot(spec), Error);
  auto expect_ticks = [](const std::vector<double>& got, const std::vector<double>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12 * (1 + std::fabs(want[i])));
  };
  expect_ticks(nice_ticks(0, 1), {0, 0.2, 0.4, 0.6, 0.8, 1});
  expect_ticks(nice_ticks(0, 0.93), {0, 0.2, 0.4, 0.6, 0.8, 1});
  expect_ticks(nice_ticks(0.31, 0.74), {0.3, 0.4, 0.5, 0.6, 0.7, 0.8});
  expect_ticks(nice_ticks(0, 10000), {0, 2000, 4000, 6000, 8000, 10000});
  EXPECT_GE(nice_ticks(3, 3).size(), 2u);
  EXPECT_THROW(nice_ticks(0, kNan), Error);
}

// ---------------------------------------------------------------- report

TEST(ReportMarkdown, OneRowPerMethodWithTheRightNumbers) {
  const MethodResult dev = make_result("device-only", 8, 0, 20),
                     cloud = make_result("cloud-only", 18, 20, 20);
  MethodResult gapg = make_result("GAPG", 13, 6, 20);
  gapg.device_tokens_mean = 120.5;
  gapg.cloud_tokens_mean = 40.3;
  gapg.device_ms_mean = 10;
  gapg.cloud_ms_mean = 5.5;
  MethodResult odd = make_result("a|b", 8, 2, 20);
  const std::string table = methods_table_markdown({dev, gapg, cloud, odd}, dev, cloud);
  std::vector<std::string> lines;
  for (size_t at = 0, nl; (nl = table.find('\n', at)) != std::string::npos; at = nl + 1)
    lines.push_back(table.substr(at, nl - at));
  ASSERT_EQ(lines.size(), 2u + 4u) << table;
  EXPECT_EQ(lines[0],
            "| method | accuracy % [95 % CI] | call rate % | gap recovered % | device tokens/query | "
            "cloud tokens/query | device ms/query | cloud ms/query |");
  const ConfidenceInterval ci = accuracy_ci(gapg);
  EXPECT_EQ(lines[3], "| GAPG | 65.0 [" + one_decimal(100 * ci.lo) + ", " + one_decimal(100 * ci.hi) +
                          "] | 30.0 | 50.0 | 120.5 | 40.3 | 10.0 | 5.5 |");
  EXPECT_EQ(lines[2].rfind("| device-only | 40.0 [", 0), 0u);
  EXPECT_NE(lines[2].find("] | 0.0 | 0.0 |"), std::string::npos);
  EXPECT_NE(lines[4].find("] | 100.0 | 100.0 |"), std::string::npos);
  EXPECT_EQ(lines[5].rfind("| a\\|b | 40.0 [", 0), 0u);
  // Anchors with no gap: "n/a".
  EXPECT_NE(methods_table_markdown({gapg}, dev, dev).find("| 30.0 | n/a |"), std::string::npos);
}

TEST(ReportMarkdown, MethodsJsonHasTheUnroundedNumbers) {
  const MethodResult dev = make_result("device-only", 8, 0, 20),
                     cloud = make_result("cloud-only", 18, 20, 20);
  MethodResult gapg = make_result("GAPG", 13, 6, 20);
  gapg.difficulty = std::vector<int>(20, 1);
  for (size_t i = 10; i < 20; ++i) gapg.difficulty[i] = 12;
  gapg.device_tokens_mean = 120.5;
  gapg.cloud_ms_mean = 7;
  const nlohmann::json j = methods_json({gapg}, dev, cloud);
  ASSERT_EQ(j.size(), 1u);
  const auto& m = j[0];
  // Exactly the keys of results.json's methods (recorded runs are compared key for key).
  std::vector<std::string> keys;
  for (auto it = m.begin(); it != m.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys,
            (std::vector<std::string>{"accuracy", "by_difficulty", "call_rate", "ci95", "cloud_ms_per_query",
                                      "cloud_tokens_per_query", "device_ms_per_query",
                                      "device_tokens_per_query", "gap_recovered", "method"}));
  EXPECT_EQ(m["method"], "GAPG");
  EXPECT_DOUBLE_EQ(m["accuracy"].get<double>(), 0.65);
  EXPECT_DOUBLE_EQ(m["call_rate"].get<double>(), 0.3);
  EXPECT_NEAR(m["gap_recovered"].get<double>(), 0.5, 1e-12);
  const ConfidenceInterval ci = accuracy_ci(gapg);
  EXPECT_DOUBLE_EQ(m["ci95"][0].get<double>(), ci.lo);
  EXPECT_DOUBLE_EQ(m["ci95"][1].get<double>(), ci.hi);
  EXPECT_DOUBLE_EQ(m["device_tokens_per_query"].get<double>(), 120.5);
  EXPECT_DOUBLE_EQ(m["cloud_ms_per_query"].get<double>(), 7);
  ASSERT_EQ(m["by_difficulty"].size(), 2u);  // keyed by the difficulty's decimal text
  EXPECT_DOUBLE_EQ(m["by_difficulty"]["1"]["accuracy"].get<double>(), 1.0);  // the 13 correct come first
  EXPECT_DOUBLE_EQ(m["by_difficulty"]["12"]["accuracy"].get<double>(), 0.3);
  EXPECT_DOUBLE_EQ(m["by_difficulty"]["12"]["call_rate"].get<double>(), 0.0);
  EXPECT_TRUE(methods_json({gapg}, dev, dev)[0]["gap_recovered"].is_null());
}

TEST(ReportMarkdown, FixedPointTextAndCells) {
  EXPECT_EQ(fixed(0.54621, 3), "0.546");
  EXPECT_EQ(fixed(-0.0001, 2), "0.00");
  EXPECT_EQ(fixed(kNan, 1), "n/a");
  EXPECT_EQ(markdown_cell("a|b\nc"), "a\\|b c");
}
