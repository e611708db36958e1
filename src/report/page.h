// The report page: one self-contained HTML file (CSS and SVG plots inline, no scripts, nothing
// fetched) built from the inputs (report/inputs.h), plus the plots as SVG text for their PNGs.
// Deterministic: the same inputs give the same bytes (no time stamps).
#pragma once
#include <string>
#include <vector>

#include "report/inputs.h"

namespace mindllm::report {

// A generation from a run's final checkpoint (made by the caller; see report/samples.h).
struct Sample {
  std::string run, checkpoint, prompt, text;
  std::string error;  // why there is no text (e.g. the checkpoint has no tokenizer)
};

struct Plot {
  std::string id;   // file name stem of its PNG, e.g. "loss_step"
  std::string svg;  // one <svg> element
};

struct PageOptions {
  double smooth = 0.9;             // EMA weight of the smoothed loss curves (0: none)
  int refresh_seconds = 0;         // > 0: the page reloads itself (--watch)
  bool png_links = false;          // each plot links its <id>.png
  std::vector<std::string> notes;  // extra lines stated under the problems (e.g. "no PNGs: ...")
};

struct Page {
  std::string html;
  std::vector<Plot> plots;
  std::vector<std::string> problems;  // every problem stated on the page
};

Page build_page(const Inputs& in, const std::vector<Sample>& samples, const PageOptions& o);

// The parts of the page (one file each: report/training.cpp, report/evaluation.cpp,
// report/data_section.cpp). Each appends its HTML and its plots.
struct Section {
  std::string html;
  std::vector<Plot> plots;
  bool png_links = false;
  // Adds a plot as a <figure>: the inline SVG, and a link to its PNG.
  void add_plot(const std::string& id, std::string svg);
};
void training_section(const std::vector<RunMetrics>& runs, double smooth, Section* s);
void evaluation_section(const std::vector<EvalResults>& evals, Section* s);
void data_section(const std::vector<DataReport>& data, Section* s);
void select_section(const std::vector<SelectReport>& selects, Section* s);

// Exponential moving average with bias correction (TensorBoard's smoothing): weight in [0, 1);
// non-finite inputs stay non-finite in the output and are skipped by the average.
std::vector<double> smooth_ema(const std::vector<double>& y, double weight);

// A number for a table cell: "%.4g" (fixed 4 decimals for |v| < 10 where `decimals`), "NaN"/"inf"
// for non-finite values.
std::string cell_number(double v, bool decimals = false);
// "12,345,678"
std::string thousands(double v);

}  // namespace mindllm::report
