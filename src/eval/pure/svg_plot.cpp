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

std::string line_plot(const PlotSpec& spec) {
  if (spec.width < 200 || spec.height < 150)
    throw Error("line_plot: " + std::to_string(spec.width) + "×" + std::to_string(spec.height) +
                    " pixels is too small",
                "use at least 200×150");
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
  const Axis xa = make_axis(x0, x1, spec.x_min, spec.x_max, "x");
  const Axis ya = make_axis(y0, y1, spec.y_min, spec.y_max, "y");

  // Layout: plot area [L, R] × [T, B]; the legend to the right of it.
  const double W = spec.width, H = spec.height;
  const double legend_w = std::min(220.0, W * 0.3);
  const double L = 70, R = W - legend_w - 10, T = 40, B = H - 55;
  auto sx = [&](double x) { return L + (x - xa.lo) / (xa.hi - xa.lo) * (R - L); };
  auto sy = [&](double y) { return B - (y - ya.lo) / (ya.hi - ya.lo) * (B - T); };

  std::string o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(spec.width) + "\" height=\"" +
       std::to_string(spec.height) + "\" viewBox=\"0 0 " + std::to_string(spec.width) + " " +
       std::to_string(spec.height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<title>" + xml_escape(spec.title) + "</title>\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  // The clip reaches a few pixels past the frame so that markers and error-bar caps on the edge stay whole.
  const double pad = 6;
  o += "<defs><clipPath id=\"plot-area\"><rect x=\"" + px(L - pad) + "\" y=\"" + px(T - pad) + "\" width=\"" +
       px(R - L + 2 * pad) + "\" height=\"" + px(B - T + 2 * pad) + "\"/></clipPath></defs>\n";
  o += "<text x=\"" + px(L) + "\" y=\"24\" font-size=\"15\" font-weight=\"bold\">" + xml_escape(spec.title) +
       "</text>\n";

  // Grid, ticks and tick labels.
  const int xd = tick_decimals(xa.ticks), yd = tick_decimals(ya.ticks);
  for (double t : xa.ticks) {
    const std::string x = px(sx(t));
    o += "<line x1=\"" + x + "\" y1=\"" + px(T) + "\" x2=\"" + x + "\" y2=\"" + px(B) +
         "\" stroke=\"#e5e5e5\"/>\n";
    o +=
        "<text x=\"" + x + "\" y=\"" + px(B + 16) + "\" text-anchor=\"middle\">" + fixed(t, xd) + "</text>\n";
  }
  for (double t : ya.ticks) {
    const std::string y = px(sy(t));
    o += "<line x1=\"" + px(L) + "\" y1=\"" + y + "\" x2=\"" + px(R) + "\" y2=\"" + y +
         "\" stroke=\"#e5e5e5\"/>\n";
    o += "<text x=\"" + px(L - 6) + "\" y=\"" + px(sy(t) + 4) + "\" text-anchor=\"end\">" + fixed(t, yd) +
         "</text>\n";
  }
  o += "<rect x=\"" + px(L) + "\" y=\"" + px(T) + "\" width=\"" + px(R - L) + "\" height=\"" + px(B - T) +
       "\" fill=\"none\" stroke=\"black\"/>\n";
  o += "<text x=\"" + px((L + R) / 2) + "\" y=\"" + px(H - 14) + "\" text-anchor=\"middle\">" +
       xml_escape(spec.x_label) + "</text>\n";
  const std::string ymid = px((T + B) / 2);
  o += "<text x=\"18\" y=\"" + ymid + "\" transform=\"rotate(-90 18 " + ymid + ")\" text-anchor=\"middle\">" +
       xml_escape(spec.y_label) + "</text>\n";

  // Data, clipped to the plot area.
  o += "<g clip-path=\"url(#plot-area)\">\n";
  if (spec.hline) {
    const std::string y = px(sy(spec.hline->y));
    o += "<line x1=\"" + px(L) + "\" y1=\"" + y + "\" x2=\"" + px(R) + "\" y2=\"" + y +
         "\" stroke=\"black\" stroke-dasharray=\"6,4\"/>\n";
  }
  for (size_t k = 0; k < spec.series.size(); ++k) {
    const Series& s = spec.series[k];
    const std::string color = kColors[k % (sizeof kColors / sizeof kColors[0])];
    o += "<g stroke=\"" + color + "\" fill=\"" + color + "\">\n";
    if (s.lines) {  // one polyline per run of finite points
      std::string points;
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
        points += (run ? " " : "") + px(sx(s.x[i])) + "," + px(sy(s.y[i]));
        ++run;
      }
      flush();
    }
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!finite_point(s, i)) continue;
      const std::string x = px(sx(s.x[i]));
      if (!s.y_lo.empty() && !s.y_hi.empty() && std::isfinite(s.y_lo[i]) && std::isfinite(s.y_hi[i])) {
        const std::string lo = px(sy(s.y_lo[i])), hi = px(sy(s.y_hi[i]));
        const std::string a = px(sx(s.x[i]) - 4), b = px(sx(s.x[i]) + 4);
        o += "<path class=\"error-bar\" fill=\"none\" d=\"M" + x + " " + lo + "V" + hi + "M" + a + " " + lo +
             "H" + b + "M" + a + " " + hi + "H" + b + "\"/>\n";
      }
      if (s.markers)
        o += "<circle cx=\"" + x + "\" cy=\"" + px(sy(s.y[i])) + "\" r=\"" + (s.lines ? "2.5" : "4") +
             "\" stroke=\"none\"/>\n";
    }
    o += "</g>\n";
  }
  o += "</g>\n";
  if (spec.hline && !spec.hline->label.empty())
    o += "<text x=\"" + px(R - 4) + "\" y=\"" + px(sy(spec.hline->y) - 5) + "\" text-anchor=\"end\">" +
         xml_escape(spec.hline->label) + "</text>\n";

  // Legend.
  for (size_t k = 0; k < spec.series.size(); ++k) {
    const Series& s = spec.series[k];
    const std::string color = kColors[k % (sizeof kColors / sizeof kColors[0])];
    const double y = T + 8 + 20.0 * static_cast<double>(k);
    if (s.lines)
      o += "<line x1=\"" + px(R + 14) + "\" y1=\"" + px(y) + "\" x2=\"" + px(R + 36) + "\" y2=\"" + px(y) +
           "\" stroke=\"" + color + "\" stroke-width=\"1.8\"/>\n";
    if (s.markers || !s.lines)
      o += "<circle cx=\"" + px(R + 25) + "\" cy=\"" + px(y) + "\" r=\"4\" fill=\"" + color + "\"/>\n";
    o += "<text x=\"" + px(R + 42) + "\" y=\"" + px(y + 4) + "\">" + xml_escape(s.name) + "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace handoff::eval
