// What a report is made of, read from the paths a user gives `mindllm report`: training runs
// (a run directory of `train`/`sft`, or its metrics.jsonl), evaluation results (`eval --out`
// results.json), `data prepare` reports and `select` reports (report.json). Reading never throws
// for a damaged or missing input: each problem becomes a line stated on the page (`problems`), and
// whatever could be read is kept.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mindllm::report {

// One training run: the fields of metrics.jsonl (src/train/trainer.cpp writes one object per step:
// step, loss, lr, grad_norm, tokens_per_s, step_time_s, optionally val_loss, target_tokens,
// skipped, and mfu when logged). One entry per logged step; NaN where a line lacks the field (a
// NaN or infinite loss is written as null by the JSON writer, so null reads as NaN too).
struct RunMetrics {
  std::string name;  // the run directory's name (made unique by the caller)
  std::string path;  // the run directory (or the file's directory)
  std::vector<double> step, loss, lr, grad_norm, tokens_per_s, mfu;
  std::vector<double> tokens;    // inputs seen up to and including the step (from tokens_per_s x step_time_s)
  std::vector<double> val_loss;  // NaN on steps without validation
  int non_finite_losses = 0, skipped_steps = 0;
  std::string final_checkpoint;  // ckpt/<latest> when it exists, else ""
};

struct EvalResults {
  std::string name;  // the model directory's name (config.model), else the file's
  std::string path;
  nlohmann::json results;  // the whole results.json
};

struct DataReport {
  std::string name, path;
  nlohmann::json report;  // `data prepare`'s report.json
};

// A `select` report: score histograms. Accepted shape (docs/report.md): an object with
// "histograms": [{"name": ..., "edges": [n+1 numbers], "counts": [n numbers], "kept": [n numbers]?}]
// or "scores": {"<name>": [numbers]} (binned here).
struct SelectHistogram {
  std::string name;
  std::vector<double> edges, counts, kept;
};
struct SelectReport {
  std::string name, path;
  std::vector<SelectHistogram> histograms;
  nlohmann::json summary;  // the report's other scalar fields, shown as a table
};

struct Inputs {
  std::vector<RunMetrics> runs;
  std::vector<EvalResults> evals;
  std::vector<DataReport> data;
  std::vector<SelectReport> selects;
  std::vector<std::string> problems;  // "<path>: what is wrong", in input order
  bool usable() const { return !runs.empty() || !evals.empty() || !data.empty() || !selects.empty(); }
};

// Reads every path (a directory holding metrics.jsonl, results.json or report.json; or one of
// those files). Missing, empty, truncated or foreign inputs become problems.
Inputs read_inputs(const std::vector<std::string>& paths);

// Reads one metrics.jsonl. A last line without its newline (a run being written, or cut short)
// and lines that are not JSON objects with a numeric "step" are skipped and named in `problems`;
// a step logged twice keeps its last line.
RunMetrics read_metrics(const std::string& metrics_path, std::vector<std::string>* problems);

// Bins values into `bins` equal bins over [min, max] of the finite values.
SelectHistogram bin_scores(const std::string& name, const std::vector<double>& values, int bins = 30);

// The files whose change should make `--watch` redraw: every input file that exists.
std::vector<std::string> watched_files(const std::vector<std::string>& paths);

}  // namespace mindllm::report
