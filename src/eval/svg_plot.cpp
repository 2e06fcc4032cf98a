#include "eval/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace handoff {

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '&':
        o += "&amp;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string line_plot(const PlotSpec& spec) {
  const double W = 720, H = 440, L = 70, R = 250, T = 40, B = 55;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : spec.series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
    }
  if (spec.hline >= 0) {
    y0 = std::min(y0, spec.hline);
    y1 = std::max(y1, spec.hline);
  }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 - x0 < 1e-12) x1 = x0 + 1;
  if (y1 - y0 < 1e-12) y1 = y0 + 1;
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad;
  y1 += pad;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  static const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  char buf[512];
  std::string o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  std::snprintf(
      buf, sizeof buf,
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
      "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      W, H);
  o += buf;
  std::snprintf(buf, sizeof buf, "<text x=\"%.0f\" y=\"22\" font-size=\"15\">", L);
  o += buf + xml_escape(spec.title) + "</text>\n";
  // Axes and ticks.
  std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n",
                L, H - B, W - R, H - B);
  o += buf;
  std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n",
                L, T, L, H - B);
  o += buf;
  for (int i = 0; i <= 5; ++i) {
    const double xv = x0 + (x1 - x0) * i / 5, yv = y0 + (y1 - y0) * i / 5;
    std::snprintf(
        buf, sizeof buf,
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.3g</text>\n<text x=\"%.1f\" y=\"%.1f\" "
        "text-anchor=\"end\">%.3g</text>\n<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
        "stroke=\"#ddd\"/>\n",
        px(xv), H - B + 16, xv, L - 6, py(yv) + 4, yv, L, py(yv), W - R, py(yv));
    o += buf;
  }
  std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (L + W - R) / 2,
                H - 12);
  o += buf + xml_escape(spec.x_label) + "</text>\n";
  std::snprintf(buf, sizeof buf,
                "<text x=\"16\" y=\"%.1f\" transform=\"rotate(-90 16 %.1f)\" text-anchor=\"middle\">",
                (T + H - B) / 2, (T + H - B) / 2);
  o += buf + xml_escape(spec.y_label) + "</text>\n";
  if (spec.hline >= 0) {
    std::snprintf(
        buf, sizeof buf,
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\" stroke-dasharray=\"5,4\"/>\n"
        "<text x=\"%.1f\" y=\"%.1f\">",
        L, py(spec.hline), W - R, py(spec.hline), W - R - 80, py(spec.hline) - 4);
    o += buf + xml_escape(spec.hline_label) + "</text>\n";
  }
  for (size_t k = 0; k < spec.series.size(); ++k) {
    const auto& s = spec.series[k];
    const char* c = colors[k % 10];
    if (s.lines && s.x.size() > 1) {
      o += "<polyline fill=\"none\" stroke=\"" + std::string(c) + "\" stroke-width=\"1.8\" points=\"";
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        std::snprintf(buf, sizeof buf, "%.1f,%.1f ", px(s.x[i]), py(s.y[i]));
        o += buf;
      }
      o += "\"/>\n";
    }
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      std::snprintf(buf, sizeof buf, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\"/>\n", px(s.x[i]),
                    py(s.y[i]), s.lines ? "2" : "5", c);
      o += buf;
    }
    std::snprintf(
        buf, sizeof buf,
        "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n<text x=\"%.1f\" y=\"%.1f\">",
        W - R + 12, T + 18.0 * k, c, W - R + 30, T + 18.0 * k + 10);
    o += buf + xml_escape(s.name) + "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace handoff
