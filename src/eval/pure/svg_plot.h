#pragma once
// A small dependency-free SVG writer for line and scatter plots: accuracy vs cloud-call rate per method (with
// the budget as a reference line and bootstrap error bars) and training curves (x = step). Chosen over
// gnuplot/matplotlib: no extra package, and the output is deterministic text a test can check as XML.
#include <optional>
#include <string>
#include <vector>

namespace handoff::eval {

struct Series {
  std::string name;  // shown in the legend
  std::vector<double> x, y;
  // Optional error bars as absolute bounds (e.g. a bootstrap interval): empty, or one per point each.
  std::vector<double> y_lo, y_hi;
  bool lines = true;    // connect consecutive points; a non-finite point breaks the line
  bool markers = true;  // a dot on every point
};

struct ReferenceLine {
  double y = 0;
  std::string label;  // e.g. "budget: call rate 0.3"
};

struct PlotSpec {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  std::optional<ReferenceLine> hline;  // a dashed horizontal line across the plot
  // Fixed axis ranges (e.g. accuracy in [0, 1]); otherwise the data's range widened to round tick values.
  std::optional<double> x_min, x_max, y_min, y_max;
  int width = 760, height = 440;  // pixels, the legend included
};

// A standalone SVG document (XML declaration + one <svg> root). Every text is XML-escaped; points with a
// non-finite x or y are skipped (for training curves with missing values); data outside fixed ranges is
// clipped to the plot area. Throws Error when a series' x and y (or y_lo/y_hi) sizes differ, a fixed range
// is empty or non-finite, or the size is below 200×150.
std::string line_plot(const PlotSpec& spec);

// Text safe inside an XML element or a quoted attribute: & < > " ' become entities; control characters
// that XML 1.0 forbids become '?'.
std::string xml_escape(const std::string& text);

// Round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi], about `target_count` intervals. lo == hi is
// widened by ±0.5 (±|lo|/2 when larger).
std::vector<double> nice_ticks(double lo, double hi, int target_count = 5);

}  // namespace handoff::eval
