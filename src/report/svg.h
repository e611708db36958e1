// Plots as SVG text, for the report page (inlined in the HTML) and its PNGs (the same SVG
// rasterized, report/png.h). Line plots with several series and a legend, horizontal bar charts
// (the data funnel) and histograms. Non-finite values never reach the drawing: a line breaks at
// them and, where `mark_non_finite` is set, a red marker on the top edge says where they were.
#pragma once
#include <string>
#include <vector>

namespace mindllm::report {

// A categorical colour (cycles through a 10-colour palette).
std::string palette_color(size_t i);

struct Line {
  std::string label;         // legend entry; empty: not in the legend
  std::vector<double> x, y;  // same length; non-finite y breaks the line
  std::string color;
  bool dashed = false;
  bool markers = false;  // a circle at each point (single points are always marked)
  double opacity = 1.0;
  double width = 1.6;
  bool mark_non_finite = false;  // red ticks on the top edge at the x of non-finite y
};

struct LinePlot {
  std::string title, x_label, y_label;
  std::vector<Line> lines;
  bool log_y = false;  // falls back to linear when a value is <= 0
};

struct Bar {
  std::string label;
  double value = 0;
  std::string note;              // text after the bar, e.g. "-1,234 (3.1%)"
  std::string color;             // empty: the first palette colour
  std::vector<double> segments;  // stacked parts of `value` (one per BarChart::segment_labels), or none
};

struct BarChart {
  std::string title, value_label;
  std::vector<Bar> bars;                    // drawn top to bottom
  std::vector<std::string> segment_labels;  // legend of the stacked parts (palette colours 0, 1, ...)
};

struct Histogram {
  std::string title, x_label;
  std::vector<double> edges;                // n + 1 bin edges, increasing
  std::vector<std::vector<double>> counts;  // one or more count sets of n bins, overlaid
  std::vector<std::string> labels;          // legend, one per count set
};

// Each returns one <svg> element (with xmlns, width/height and a viewBox) that renders alone.
// Every data series is a <path class="series">; "no data" is written in an empty plot.
std::string line_plot_svg(const LinePlot& p, int width = 720, int height = 380);
std::string bar_chart_svg(const BarChart& c, int width = 720);
std::string histogram_svg(const Histogram& h, int width = 720, int height = 340);

// Axis ticks: about `target` round values (1, 2, 5 x 10^k) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
// A short label for a number: 3 significant digits, k/M/G from 10^4 up.
std::string short_number(double v);
// Escapes &, <, >, " and ' for XML/HTML text and attributes.
std::string xml_escape(const std::string& s);

}  // namespace mindllm::report
