#pragma once
// A small dependency-free SVG writer for line/scatter plots (chosen over gnuplot: no extra package, output is
// deterministic and testable as XML).
#include <string>
#include <vector>

namespace handoff {

struct Series {
  std::string name;
  std::vector<double> x, y;
  bool lines = true;  // false: markers only
};

struct PlotSpec {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  double hline = -1;  // a horizontal reference line (e.g. the budget); < 0 → none
  std::string hline_label;
};

std::string line_plot(const PlotSpec& spec);
std::string xml_escape(const std::string& s);

}  // namespace handoff
