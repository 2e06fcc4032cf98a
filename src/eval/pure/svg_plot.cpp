#include "eval/pure/svg_plot.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "common/error.h"

namespace handoff::eval {

namespace {

const char* const kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

// Locale-independent fixed-point text (snprintf would write "0,5" under a German locale).
std::string fixed(double v, int decimals) {
  if (v == 0) v = 0;  // no "-0.00"
  char buf[512];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  if (res.ec != std::errc()) return "0";
  std::string s(buf, res.ptr);
  if (s.find_first_not_of("-0.") == std::string::npos)
    return decimals > 0 ? "0." + std::string(decimals, '0') : "0";
  return s;
}

// Pixel coordinates, clamped so that far-away data cannot produce huge numbers.
std::string px(double v) {
  return fixed(std::clamp(v, -1e6, 1e6), 2);
}

int tick_decimals(const std::vector<double>& ticks) {
  if (ticks.size() < 2) return 0;
  const double step = ticks[1] - ticks[0];
  return std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
}

bool finite_point(const Series& s, size_t i) {
  return std::isfinite(s.x[i]) && std::isfinite(s.y[i]);
}

void check_series(const Series& s) {
  if (s.x.size() != s.y.size())
    throw Error("line_plot: series '" + s.name + "' has " + std::to_string(s.x.size()) + " x values and " +
                    std::to_string(s.y.size()) + " y values",
                "give one y per x");
  for (const auto* bounds : {&s.y_lo, &s.y_hi})
    if (!bounds->empty() && bounds->size() != s.x.size())
      throw Error("line_plot: series '" + s.name + "' has error bars for " + std::to_string(bounds->size()) +
                      " of " + std::to_string(s.x.size()) + " points",
                  "give y_lo and y_hi for every point, or leave them empty");
}

struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
};

// The axis over the data range [dlo, dhi] (infinite when there is no data), or the fixed range.
Axis make_axis(double dlo, double dhi, const std::optional<double>& fmin, const std::optional<double>& fmax,
               const char* name) {
  if (!std::isfinite(dlo)) dlo = 0, dhi = 1;
  Axis a;
  a.lo = fmin.value_or(dlo);
  a.hi = fmax.value_or(dhi);
  if ((fmin || fmax) && !(std::isfinite(a.lo) && std::isfinite(a.hi) && a.lo < a.hi))
    throw Error(std::string("line_plot: the ") + name + " range [" + std::to_string(a.lo) + ", " +
                    std::to_string(a.hi) + "] is empty or not finite",
                "set min < max, or leave the range to the data");
  const std::vector<double> ticks = nice_ticks(a.lo, a.hi);
  if (!fmin) a.lo = ticks.front();
  if (!fmax) a.hi = ticks.back();
  const double tol = 1e-9 * (a.hi - a.lo);
  for (double t : ticks)
    if (t >= a.lo - tol && t <= a.hi + tol) a.ticks.push_back(t);
  return a;
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
          out += '?';
        else
          out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target_count) {
  if (!std::isfinite(lo) || !std::isfinite(hi))
    throw Error("nice_ticks: the range is not finite", "pass finite bounds");
  if (target_count < 1) throw Error("nice_ticks: target_count < 1", "ask for at least one interval");
  if (hi < lo) std::swap(lo, hi);
  if (hi - lo <= 1e-12 * std::max(1.0, std::fabs(lo))) {
    const double widen = std::max(0.5, std::fabs(lo) / 2);
    lo -= widen;
    hi += widen;
  }
  const double raw = (hi - lo) / target_count;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  std::vector<double> ticks;
  for (double k = first; k <= last + 0.5; k += 1) {
    const double t = k * step;
    ticks.push_back(t == 0 ? 0.0 : t);
  }
  return ticks;
}

namespace {

// The axes over the data and the plot area [L, R] × [T, B] within the W × H picture; the legend goes to the
// right of the plot area.
struct Frame {
  Axis xa, ya;
  double W = 0, H = 0, L = 0, R = 0, T = 0, B = 0;
  double sx(double x) const { return L + (x - xa.lo) / (xa.hi - xa.lo) * (R - L); }
  double sy(double y) const { return B - (y - ya.lo) / (ya.hi - ya.lo) * (B - T); }
};

Frame make_frame(const PlotSpec& spec) {
  // Data ranges: points, error bars and the reference line.
  const double inf = std::numeric_limits<double>::infinity();
  double x0 = inf, x1 = -inf, y0 = inf, y1 = -inf;
  auto include_y = [&](double y) {
    if (std::isfinite(y)) y0 = std::min(y0, y), y1 = std::max(y1, y);
  };
  for (const Series& s : spec.series) {
    check_series(s);
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!finite_point(s, i)) continue;
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      include_y(s.y[i]);
      if (!s.y_lo.empty()) include_y(s.y_lo[i]);
      if (!s.y_hi.empty()) include_y(s.y_hi[i]);
    }
  }
  if (spec.hline) include_y(spec.hline->y);
  Frame f;
  f.xa = make_axis(x0, x1, spec.x_min, spec.x_max, "x");
  f.ya = make_axis(y0, y1, spec.y_min, spec.y_max, "y");
  f.W = spec.width;
  f.H = spec.height;
  const double legend_w = std::min(220.0, f.W * 0.3);
  f.L = 70, f.R = f.W - legend_w - 10, f.T = 40, f.B = f.H - 55;
  return f;
}

const char* series_color(size_t k) {
  return kColors[k % (sizeof kColors / sizeof kColors[0])];
}

// The XML declaration, the <svg> root, the title, the background and the plot area's clip path.
std::string svg_header(const PlotSpec& spec, const Frame& f) {
  std::string o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(spec.width) + "\" height=\"" +
       std::to_string(spec.height) + "\" viewBox=\"0 0 " + std::to_string(spec.width) + " " +
       std::to_string(spec.height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<title>" + xml_escape(spec.title) + "</title>\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  // The clip reaches a few pixels past the frame so that markers and error-bar caps on the edge stay whole.
  const double pad = 6;
  o += "<defs><clipPath id=\"plot-area\"><rect x=\"" + px(f.L - pad) + "\" y=\"" + px(f.T - pad) +
       "\" width=\"" + px(f.R - f.L + 2 * pad) + "\" height=\"" + px(f.B - f.T + 2 * pad) +
       "\"/></clipPath></defs>\n";
  o += "<text x=\"" + px(f.L) + "\" y=\"24\" font-size=\"15\" font-weight=\"bold\">" +
       xml_escape(spec.title) + "</text>\n";
  return o;
}

// Grid, ticks and tick labels, the frame and the axis labels.
std::string axes_svg(const PlotSpec& spec, const Frame& f) {
  std::string o;
  const int xd = tick_decimals(f.xa.ticks), yd = tick_decimals(f.ya.ticks);
  for (double t : f.xa.ticks) {
    const std::string x = px(f.sx(t));
    o += "<line x1=\"" + x + "\" y1=\"" + px(f.T) + "\" x2=\"" + x + "\" y2=\"" + px(f.B) +
         "\" stroke=\"#e5e5e5\"/>\n";
    o += "<text x=\"" + x + "\" y=\"" + px(f.B + 16) + "\" text-anchor=\"middle\">" + fixed(t, xd) +
         "</text>\n";
  }
  for (double t : f.ya.ticks) {
    const std::string y = px(f.sy(t));
    o += "<line x1=\"" + px(f.L) + "\" y1=\"" + y + "\" x2=\"" + px(f.R) + "\" y2=\"" + y +
         "\" stroke=\"#e5e5e5\"/>\n";
    o += "<text x=\"" + px(f.L - 6) + "\" y=\"" + px(f.sy(t) + 4) + "\" text-anchor=\"end\">" + fixed(t, yd) +
         "</text>\n";
  }
  o += "<rect x=\"" + px(f.L) + "\" y=\"" + px(f.T) + "\" width=\"" + px(f.R - f.L) + "\" height=\"" +
       px(f.B - f.T) + "\" fill=\"none\" stroke=\"black\"/>\n";
  o += "<text x=\"" + px((f.L + f.R) / 2) + "\" y=\"" + px(f.H - 14) + "\" text-anchor=\"middle\">" +
       xml_escape(spec.x_label) + "</text>\n";
  const std::string ymid = px((f.T + f.B) / 2);
  o += "<text x=\"18\" y=\"" + ymid + "\" transform=\"rotate(-90 18 " + ymid + ")\" text-anchor=\"middle\">" +
       xml_escape(spec.y_label) + "</text>\n";
  return o;
}

// One polyline per run of finite points.
std::string polylines_svg(const Series& s, const Frame& f) {
  std::string o, points;
  size_t run = 0;
  auto flush = [&] {
    if (run >= 2) o += "<polyline fill=\"none\" stroke-width=\"1.8\" points=\"" + points + "\"/>\n";
    points.clear();
    run = 0;
  };
  for (size_t i = 0; i < s.x.size(); ++i) {
    if (!finite_point(s, i)) {
      flush();
      continue;
    }
    points += (run ? " " : "") + px(f.sx(s.x[i])) + "," + px(f.sy(s.y[i]));
    ++run;
  }
  flush();
  return o;
}

// Error bars and markers of the finite points.
std::string points_svg(const Series& s, const Frame& f) {
  std::string o;
  for (size_t i = 0; i < s.x.size(); ++i) {
    if (!finite_point(s, i)) continue;
    const std::string x = px(f.sx(s.x[i]));
    if (!s.y_lo.empty() && !s.y_hi.empty() && std::isfinite(s.y_lo[i]) && std::isfinite(s.y_hi[i])) {
      const std::string lo = px(f.sy(s.y_lo[i])), hi = px(f.sy(s.y_hi[i]));
      const std::string a = px(f.sx(s.x[i]) - 4), b = px(f.sx(s.x[i]) + 4);
      o += "<path class=\"error-bar\" fill=\"none\" d=\"M" + x + " " + lo + "V" + hi + "M" + a + " " + lo +
           "H" + b + "M" + a + " " + hi + "H" + b + "\"/>\n";
    }
    if (s.markers)
      o += "<circle cx=\"" + x + "\" cy=\"" + px(f.sy(s.y[i])) + "\" r=\"" + (s.lines ? "2.5" : "4") +
           "\" stroke=\"none\"/>\n";
  }
  return o;
}

// The reference line and every series, clipped to the plot area; then the reference line's label.
std::string data_svg(const PlotSpec& spec, const Frame& f) {
  std::string o = "<g clip-path=\"url(#plot-area)\">\n";
  if (spec.hline) {
    const std::string y = px(f.sy(spec.hline->y));
    o += "<line x1=\"" + px(f.L) + "\" y1=\"" + y + "\" x2=\"" + px(f.R) + "\" y2=\"" + y +
         "\" stroke=\"black\" stroke-dasharray=\"6,4\"/>\n";
  }
  for (size_t k = 0; k < spec.series.size(); ++k) {
    const Series& s = spec.series[k];
    const std::string color = series_color(k);
    o += "<g stroke=\"" + color + "\" fill=\"" + color + "\">\n";
    if (s.lines) o += polylines_svg(s, f);
    o += points_svg(s, f);
    o += "</g>\n";
  }
  o += "</g>\n";
  if (spec.hline && !spec.hline->label.empty())
    o += "<text x=\"" + px(f.R - 4) + "\" y=\"" + px(f.sy(spec.hline->y) - 5) + "\" text-anchor=\"end\">" +
         xml_escape(spec.hline->label) + "</text>\n";
  return o;
}

std::string legend_svg(const PlotSpec& spec, const Frame& f) {
  std::string o;
  for (size_t k = 0; k < spec.series.size(); ++k) {
    const Series& s = spec.series[k];
    const std::string color = series_color(k);
    const double y = f.T + 8 + 20.0 * static_cast<double>(k);
    if (s.lines)
      o += "<line x1=\"" + px(f.R + 14) + "\" y1=\"" + px(y) + "\" x2=\"" + px(f.R + 36) + "\" y2=\"" +
           px(y) + "\" stroke=\"" + color + "\" stroke-width=\"1.8\"/>\n";
    if (s.markers || !s.lines)
      o += "<circle cx=\"" + px(f.R + 25) + "\" cy=\"" + px(y) + "\" r=\"4\" fill=\"" + color + "\"/>\n";
    o += "<text x=\"" + px(f.R + 42) + "\" y=\"" + px(y + 4) + "\">" + xml_escape(s.name) + "</text>\n";
  }
  return o;
}

}  // namespace

std::string line_plot(const PlotSpec& spec) {
  if (spec.width < 200 || spec.height < 150)
    throw Error("line_plot: " + std::to_string(spec.width) + "×" + std::to_string(spec.height) +
                    " pixels is too small",
                "use at least 200×150");
  const Frame f = make_frame(spec);
  std::string o = svg_header(spec, f);
  o += axes_svg(spec, f);
  o += data_svg(spec, f);
  o += legend_svg(spec, f);
  o += "</svg>\n";
  return o;
}

}  // namespace handoff::eval
