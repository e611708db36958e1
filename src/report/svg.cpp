#include "report/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace mindllm::report {

namespace {

constexpr const char* kFont = "DejaVu Sans, Helvetica, Arial, sans-serif";

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string px(double v) { return fmt("%.1f", v); }

// The opening <svg> with a white background and the title.
std::string svg_open(int width, int height, const std::string& title) {
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" width=\"" + std::to_string(width) +
                  "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " +
                  std::to_string(height) + "\" font-family=\"" + kFont + "\" font-size=\"12\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  s += "<text x=\"" + std::to_string(width / 2) +
       "\" y=\"20\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">" + xml_escape(title) + "</text>\n";
  return s;
}

std::string text(double x, double y, const std::string& s, const char* anchor = "start",
                 const std::string& extra = "") {
  return "<text x=\"" + px(x) + "\" y=\"" + px(y) + "\" text-anchor=\"" + anchor + "\"" + extra + ">" + xml_escape(s) +
         "</text>\n";
}

// Log-axis ticks: the powers of ten in [lo, hi] (and 2x, 5x when fewer than three).
std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> t;
  for (int mult_set = 0; mult_set < 2 && t.size() < 3; mult_set++) {
    t.clear();
    for (int e = (int)std::floor(std::log10(lo)); e <= (int)std::ceil(std::log10(hi)); e++)
      for (double m : mult_set == 0 ? std::vector<double>{1} : std::vector<double>{1, 2, 5}) {
        double v = m * std::pow(10.0, e);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) t.push_back(v);
      }
  }
  return t;
}

}  // namespace

std::string palette_color(size_t i) {
  // A colour-blind-friendly categorical palette (Tableau 10 hues).
  static const char* kColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
                                  "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"};
  return kColors[i % 10];
}

std::string xml_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string short_number(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "NaN" : (v > 0 ? "inf" : "-inf");
  double a = std::fabs(v);
  if (a >= 1e9) return fmt("%.3g", v / 1e9) + "G";
  if (a >= 1e6) return fmt("%.3g", v / 1e6) + "M";
  if (a >= 1e4) return fmt("%.3g", v / 1e3) + "k";
  if (a != 0 && a < 1e-3) return fmt("%.2g", v);
  return fmt("%.4g", v);
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) {  // one value: a range around it
    double d = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= d, hi += d;
  }
  double raw = (hi - lo) / std::max(1, target);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double r = raw / mag;
  double step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
  std::vector<double> t;
  const double k0 = std::ceil(lo / step - 1e-9);
  for (int i = 0; i < 50; i++) {  // k x step, not repeated addition: no drift
    double v = (k0 + i) * step;
    if (v > hi + step * 1e-9) break;
    t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  }
  return t;
}

std::string line_plot_svg(const LinePlot& p, int width, int height) {
  const double inf = std::numeric_limits<double>::infinity();
  double x0 = inf, x1 = -inf, y0 = inf, y1 = -inf;
  bool log_y = p.log_y;
  size_t legend = 0;
  for (const Line& l : p.lines) {
    if (!l.label.empty()) legend++;
    for (size_t i = 0; i < l.x.size() && i < l.y.size(); i++) {
      if (!std::isfinite(l.x[i])) continue;
      x0 = std::min(x0, l.x[i]), x1 = std::max(x1, l.x[i]);
      if (!std::isfinite(l.y[i])) continue;
      y0 = std::min(y0, l.y[i]), y1 = std::max(y1, l.y[i]);
      if (l.y[i] <= 0) log_y = false;
    }
  }
  const double L = 72, T = 34, R = legend ? 210 : 20, B = 46;
  height = std::max<int>(height, (int)(T + 10 + 18 * legend));
  const double W = width - L - R, H = height - T - B;
  std::string s = svg_open(width, height, p.title);
  if (!(y0 <= y1)) {
    s += text(L + W / 2, T + H / 2, "no data", "middle", " fill=\"#888\"");
    return s + "</svg>\n";
  }
  std::vector<double> xt = nice_ticks(x0, x1, 6);
  if (x1 == x0) x0 = xt.front(), x1 = xt.back();
  std::vector<double> yt;
  if (log_y) {
    double a = std::log10(y0), b = std::log10(y1), pad = std::max(0.02, (b - a) * 0.04);
    y0 = std::pow(10.0, a - pad), y1 = std::pow(10.0, b + pad);
    yt = log_ticks(y0, y1);
  } else {
    double pad = (y1 - y0) * 0.05;
    if (pad == 0) pad = y0 == 0 ? 1 : std::fabs(y0) * 0.1;
    y0 -= pad, y1 += pad;
    yt = nice_ticks(y0, y1, 5);
  }
  auto fy = [&](double y) { return log_y ? std::log10(y) : y; };
  auto sx = [&](double x) { return L + (x - x0) / (x1 - x0) * W; };
  auto sy = [&](double y) { return T + H - (fy(y) - fy(y0)) / (fy(y1) - fy(y0)) * H; };

  // Grid, axes and tick labels.
  s += "<g stroke=\"#e5e5e5\" stroke-width=\"1\">\n";
  for (double v : xt)
    if (v >= x0 && v <= x1)
      s += "<line x1=\"" + px(sx(v)) + "\" y1=\"" + px(T) + "\" x2=\"" + px(sx(v)) + "\" y2=\"" + px(T + H) + "\"/>\n";
  for (double v : yt)
    if (v >= y0 && v <= y1)
      s += "<line x1=\"" + px(L) + "\" y1=\"" + px(sy(v)) + "\" x2=\"" + px(L + W) + "\" y2=\"" + px(sy(v)) + "\"/>\n";
  s += "</g>\n<rect x=\"" + px(L) + "\" y=\"" + px(T) + "\" width=\"" + px(W) + "\" height=\"" + px(H) +
       "\" fill=\"none\" stroke=\"#555\"/>\n<g fill=\"#333\">\n";
  for (double v : xt)
    if (v >= x0 && v <= x1) s += text(sx(v), T + H + 15, short_number(v), "middle");
  for (double v : yt)
    if (v >= y0 && v <= y1) s += text(L - 6, sy(v) + 4, short_number(v), "end");
  s += text(L + W / 2, height - 10, p.x_label, "middle");
  s += "<text transform=\"translate(16," + px(T + H / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       xml_escape(p.y_label) + "</text>\n</g>\n";

  // Series (the axes' range holds every finite point: no clipping needed, and no ids that would
  // clash between the plots of one page).
  s += "<g>\n";
  std::string marks;
  for (const Line& l : p.lines) {
    std::string d, dots;
    bool pen_down = false;
    size_t points = 0;
    for (size_t i = 0; i < l.x.size() && i < l.y.size(); i++) {
      bool ok = std::isfinite(l.x[i]) && std::isfinite(l.y[i]) && !(log_y && l.y[i] <= 0);
      if (!ok) {
        pen_down = false;
        if (l.mark_non_finite && std::isfinite(l.x[i]) && !std::isfinite(l.y[i]))
          marks += "<path class=\"non-finite\" d=\"M" + px(sx(l.x[i]) - 4) + " " + px(T) + "L" + px(sx(l.x[i]) + 4) +
                   " " + px(T) + "L" + px(sx(l.x[i])) + " " + px(T + 8) +
                   "Z\" fill=\"#d62728\"><title>non-finite value at x = " + short_number(l.x[i]) + "</title></path>\n";
        continue;
      }
      d += pen_down ? 'L' : 'M';  // (appended piece by piece: GCC 12 warns falsely on "M" + std::string)
      d += px(sx(l.x[i]));
      d += ' ';
      d += px(sy(l.y[i]));
      pen_down = true;
      points++;
      if (l.markers) dots += "<circle cx=\"" + px(sx(l.x[i])) + "\" cy=\"" + px(sy(l.y[i])) + "\" r=\"2.6\"/>";
    }
    if (d.empty()) continue;
    if (points == 1 && !l.markers) {  // a lone point draws no line: mark it
      size_t i = 0;
      while (!(std::isfinite(l.x[i]) && std::isfinite(l.y[i]))) i++;
      dots = "<circle cx=\"" + px(sx(l.x[i])) + "\" cy=\"" + px(sy(l.y[i])) + "\" r=\"2.6\"/>";
    }
    s += "<path class=\"series\" d=\"" + d + "\" fill=\"none\" stroke=\"" + l.color + "\" stroke-width=\"" +
         px(l.width) + "\" stroke-opacity=\"" + fmt("%.2f", l.opacity) + "\" stroke-linejoin=\"round\"" +
         (l.dashed ? " stroke-dasharray=\"6 3\"" : "") + "/>\n";
    if (!dots.empty())
      s += "<g fill=\"" + l.color + "\" fill-opacity=\"" + fmt("%.2f", l.opacity) + "\">" + dots + "</g>\n";
  }
  s += "</g>\n" + marks;

  // Legend, right of the plot.
  double ly = T + 8;
  for (const Line& l : p.lines) {
    if (l.label.empty()) continue;
    double lx = L + W + 12;
    s += "<line x1=\"" + px(lx) + "\" y1=\"" + px(ly) + "\" x2=\"" + px(lx + 22) + "\" y2=\"" + px(ly) +
         "\" stroke=\"" + l.color + "\" stroke-width=\"" + px(std::max(2.0, l.width)) + "\" stroke-opacity=\"" +
         fmt("%.2f", std::max(0.35, l.opacity)) + "\"" + (l.dashed ? " stroke-dasharray=\"6 3\"" : "") + "/>\n";
    std::string label = l.label.size() > 30 ? l.label.substr(0, 28) + "…" : l.label;
    s += text(lx + 28, ly + 4, label, "start", " fill=\"#222\"");
    ly += 18;
  }
  return s + "</svg>\n";
}

std::string bar_chart_svg(const BarChart& c, int width) {
  const double L = 210, R = 190, T = 34, row = 24;
  const int height = (int)(T + 30 + row * std::max<size_t>(1, c.bars.size()));
  const double W = width - L - R;
  std::string s = svg_open(width, height, c.title);
  double vmax = 0;
  for (const Bar& b : c.bars)
    if (std::isfinite(b.value)) vmax = std::max(vmax, b.value);
  if (c.bars.empty()) return s + text(width / 2.0, T + 20, "no data", "middle", " fill=\"#888\"") + "</svg>\n";
  double y = T + 6;
  for (const Bar& b : c.bars) {
    double v = std::isfinite(b.value) ? std::max(0.0, b.value) : 0;
    double w = vmax > 0 ? v / vmax * W : 0;
    std::string label = b.label.size() > 32 ? b.label.substr(0, 30) + "…" : b.label;
    s += text(L - 8, y + row / 2 + 1, label, "end", " fill=\"#222\"");
    auto rect = [&](double x, double width, const std::string& color, double opacity) {
      return "<path class=\"series\" d=\"M" + px(x) + " " + px(y + 3) + "h" + px(width) + "v" + px(row - 6) + "h" +
             px(-width) + "Z\" fill=\"" + color + "\" fill-opacity=\"" + fmt("%.2f", opacity) + "\"/>\n";
    };
    const bool stacked = !c.segment_labels.empty() && b.segments.size() == c.segment_labels.size() && w >= 1.0;
    if (stacked) {  // the parts side by side, each in its legend colour; the bar's own colour as a faint outline
      double x = L;
      for (size_t k = 0; k < b.segments.size(); k++) {
        double sw = vmax > 0 && std::isfinite(b.segments[k]) ? std::max(0.0, b.segments[k]) / vmax * W : 0;
        if (sw > 0) s += rect(x, sw, palette_color(k), 0.85);
        x += sw;
      }
      s += "<rect x=\"" + px(L) + "\" y=\"" + px(y + 3) + "\" width=\"" + px(w) + "\" height=\"" + px(row - 6) +
           "\" fill=\"none\" stroke=\"" + (b.color.empty() ? palette_color(0) : b.color) + "\" stroke-width=\"2\"/>\n";
    } else {  // a bar of zero width still gets a hairline so the path is never empty
      s += rect(L, std::max(w, 1.0), b.color.empty() ? palette_color(0) : b.color, 1.0);
    }
    s += text(L + std::max(w, 1.0) + 6, y + row / 2 + 1, short_number(b.value) + (b.note.empty() ? "" : "  " + b.note),
              "start", " fill=\"#333\"");
    y += row;
  }
  s += text(L + W / 2, height - 8, c.value_label, "middle", " fill=\"#333\"");
  for (size_t k = 0; k < c.segment_labels.size(); k++) {  // legend, bottom left
    double lx = 12 + 90 * k;
    s += "<rect x=\"" + px(lx) + "\" y=\"" + px(height - 19) + "\" width=\"12\" height=\"12\" fill=\"" +
         palette_color(k) + "\" fill-opacity=\"0.85\"/>\n" +
         text(lx + 16, height - 9, c.segment_labels[k], "start", " fill=\"#222\"");
  }
  return s + "</svg>\n";
}

std::string histogram_svg(const Histogram& h, int width, int height) {
  const double L = 64, R = h.labels.size() > 1 ? 170 : 20, T = 34, B = 46;
  const double W = width - L - R, H = height - T - B;
  std::string s = svg_open(width, height, h.title);
  const size_t n = h.edges.size() >= 2 ? h.edges.size() - 1 : 0;
  double cmax = 0;
  for (const auto& cs : h.counts)
    for (size_t i = 0; i < n && i < cs.size(); i++)
      if (std::isfinite(cs[i])) cmax = std::max(cmax, cs[i]);
  if (n == 0 || cmax <= 0) return s + text(L + W / 2, T + H / 2, "no data", "middle", " fill=\"#888\"") + "</svg>\n";
  const double x0 = h.edges.front(), x1 = h.edges.back();
  auto sx = [&](double x) { return L + (x - x0) / (x1 - x0) * W; };
  auto sy = [&](double c) { return T + H - c / (cmax * 1.05) * H; };
  s += "<g stroke=\"#e5e5e5\">\n";
  std::vector<double> yt = nice_ticks(0, cmax * 1.05, 4);
  for (double v : yt)
    s += "<line x1=\"" + px(L) + "\" y1=\"" + px(sy(v)) + "\" x2=\"" + px(L + W) + "\" y2=\"" + px(sy(v)) + "\"/>\n";
  s += "</g>\n<g fill=\"#333\">\n";
  for (double v : yt) s += text(L - 6, sy(v) + 4, short_number(v), "end");
  for (double v : nice_ticks(x0, x1, 6))
    if (v >= x0 && v <= x1) s += text(sx(v), T + H + 15, short_number(v), "middle");
  s += text(L + W / 2, height - 10, h.x_label, "middle") + "</g>\n";
  for (size_t k = 0; k < h.counts.size(); k++) {
    std::string d;
    for (size_t i = 0; i < n && i < h.counts[k].size(); i++) {
      double c = std::isfinite(h.counts[k][i]) ? h.counts[k][i] : 0;
      if (c <= 0) continue;
      d += 'M';
      d += px(sx(h.edges[i]) + 0.5) + " " + px(T + H) + "V" + px(sy(c)) + "H" + px(sx(h.edges[i + 1]) - 0.5) + "V" +
           px(T + H) + "Z";
    }
    if (!d.empty())
      s += "<path class=\"series\" d=\"" + d + "\" fill=\"" + palette_color(k) + "\" fill-opacity=\"" +
           (h.counts.size() > 1 ? "0.6" : "0.9") + "\"/>\n";
  }
  s += "<rect x=\"" + px(L) + "\" y=\"" + px(T) + "\" width=\"" + px(W) + "\" height=\"" + px(H) +
       "\" fill=\"none\" stroke=\"#555\"/>\n";
  if (h.labels.size() > 1)
    for (size_t k = 0; k < h.labels.size(); k++) {
      double ly = T + 8 + 18 * k;
      s += "<rect x=\"" + px(L + W + 12) + "\" y=\"" + px(ly - 6) + "\" width=\"14\" height=\"12\" fill=\"" +
           palette_color(k) + "\" fill-opacity=\"0.6\"/>\n" +
           text(L + W + 32, ly + 4, h.labels[k], "start", " fill=\"#222\"");
    }
  return s + "</svg>\n";
}

}  // namespace mindllm::report
