// A few plots as standalone SVG files, with nothing but the standard library: panels with
// linear or log2 axes, points, lines with error bars, labels. Enough for the study's figures.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace svg_plot {

struct axis {
  std::string label;
  double lo = 0.0, hi = 1.0;
  bool log2 = false;
  std::vector<double> ticks;  // where to draw ticks (data units)
  int decimals = 2;
};

struct series {
  std::string name;
  std::string colour = "#1f77b4";
  std::vector<double> x, y;
  std::vector<double> error;   // ± per point, optional (a line with error bars)
  bool line = false;           // join the points
  double radius = 2.5;
  double opacity = 0.7;
};

struct panel {
  std::string title;
  axis x, y;
  std::vector<series> data;
  bool diagonal = false;       // y = x, for scatter plots of one accuracy against another
};

inline std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

inline std::string num(double v, int decimals = 1) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

// Panels side by side, each width × height pixels.
inline void write(const std::string& path, const std::string& title, const std::vector<panel>& panels,
                  double width = 420, double height = 340) {
  const double ml = 60, mr = 15, mt = 50, mb = 50;
  const double total_w = width * static_cast<double>(panels.size()), total_h = height + 30;
  std::string s = "<svg xmlns='http://www.w3.org/2000/svg' width='" + num(total_w, 0) + "' height='" +
                  num(total_h, 0) + "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
  s += "<text x='" + num(total_w / 2, 0) + "' y='20' text-anchor='middle' font-size='15'>" + esc(title) + "</text>\n";
  for (std::size_t p = 0; p < panels.size(); ++p) {
    const auto& pn = panels[p];
    const double x0 = width * static_cast<double>(p) + ml, x1 = width * static_cast<double>(p + 1) - mr;
    const double y0 = 30 + height - mb, y1 = 30 + mt - 10;
    auto tx = [&](double v) {
      const double a = pn.x.log2 ? std::log2(v) : v, lo = pn.x.log2 ? std::log2(pn.x.lo) : pn.x.lo,
                   hi = pn.x.log2 ? std::log2(pn.x.hi) : pn.x.hi;
      return x0 + (a - lo) / (hi - lo) * (x1 - x0);
    };
    auto ty = [&](double v) { return y0 - (v - pn.y.lo) / (pn.y.hi - pn.y.lo) * (y0 - y1); };
    s += "<text x='" + num((x0 + x1) / 2, 0) + "' y='" + num(y1 - 8, 0) + "' text-anchor='middle' font-size='13'>" +
         esc(pn.title) + "</text>\n";
    s += "<rect x='" + num(x0) + "' y='" + num(y1) + "' width='" + num(x1 - x0) + "' height='" + num(y0 - y1) +
         "' fill='none' stroke='#444'/>\n";
    for (double t : pn.x.ticks) {
      const double X = tx(t);
      s += "<line x1='" + num(X) + "' y1='" + num(y0) + "' x2='" + num(X) + "' y2='" + num(y1) + "' stroke='#eee'/>";
      s += "<text x='" + num(X) + "' y='" + num(y0 + 15) + "' text-anchor='middle'>" + num(t, pn.x.decimals) + "</text>\n";
    }
    for (double t : pn.y.ticks) {
      const double Y = ty(t);
      s += "<line x1='" + num(x0) + "' y1='" + num(Y) + "' x2='" + num(x1) + "' y2='" + num(Y) + "' stroke='#eee'/>";
      s += "<text x='" + num(x0 - 5) + "' y='" + num(Y + 4) + "' text-anchor='end'>" + num(t, pn.y.decimals) + "</text>\n";
    }
    s += "<text x='" + num((x0 + x1) / 2) + "' y='" + num(y0 + 35) + "' text-anchor='middle'>" + esc(pn.x.label) + "</text>\n";
    s += "<text transform='translate(" + num(x0 - 45) + "," + num((y0 + y1) / 2) +
         ") rotate(-90)' text-anchor='middle'>" + esc(pn.y.label) + "</text>\n";
    if (pn.diagonal) {
      const double lo = std::max(pn.x.lo, pn.y.lo), hi = std::min(pn.x.hi, pn.y.hi);
      if (lo < hi)
        s += "<line x1='" + num(tx(lo)) + "' y1='" + num(ty(lo)) + "' x2='" + num(tx(hi)) + "' y2='" + num(ty(hi)) +
             "' stroke='#999' stroke-dasharray='4 3'/>\n";
    }
    double legend_y = y1 + 14;
    for (const auto& d : pn.data) {
      if (d.x.size() != d.y.size()) throw std::invalid_argument("svg_plot: a series with x and y of different sizes");
      if (d.line && d.x.size() > 1) {
        std::string pts;
        for (std::size_t i = 0; i < d.x.size(); ++i) pts += num(tx(d.x[i])) + "," + num(ty(d.y[i])) + " ";
        s += "<polyline points='" + pts + "' fill='none' stroke='" + d.colour + "' stroke-width='1.5'/>\n";
      }
      for (std::size_t i = 0; i < d.x.size(); ++i) {
        const double X = tx(d.x[i]), Y = ty(d.y[i]);
        if (i < d.error.size() && d.error[i] > 0)
          s += "<line x1='" + num(X) + "' y1='" + num(ty(d.y[i] - d.error[i])) + "' x2='" + num(X) + "' y2='" +
               num(ty(d.y[i] + d.error[i])) + "' stroke='" + d.colour + "'/>";
        s += "<circle cx='" + num(X) + "' cy='" + num(Y) + "' r='" + num(d.radius) + "' fill='" + d.colour +
             "' fill-opacity='" + num(d.opacity, 2) + "'/>\n";
      }
      if (!d.name.empty()) {
        s += "<circle cx='" + num(x0 + 10) + "' cy='" + num(legend_y - 4) + "' r='4' fill='" + d.colour + "'/>";
        s += "<text x='" + num(x0 + 18) + "' y='" + num(legend_y) + "'>" + esc(d.name) + "</text>\n";
        legend_y += 15;
      }
    }
  }
  s += "</svg>\n";
  std::ofstream out(path);
  out << s;
  if (!out) throw std::runtime_error("cannot write " + path);
}

// Ticks at round steps covering [lo, hi].
inline std::vector<double> nice_ticks(double lo, double hi, int target = 5) {
  const double span = hi - lo;
  if (!(span > 0)) return {lo};
  const double raw = span / target, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) t.push_back(v);
  return t;
}

}  // namespace svg_plot
