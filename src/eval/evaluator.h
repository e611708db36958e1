// `mindllm eval`: runs task specs on a model, computes lm-evaluation-harness's metrics and
// writes results.json in its layout plus a Markdown table.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/scoring.h"
#include "eval/task.h"
#include "model/weights_io.h"

namespace mindllm::eval {

struct EvalOptions {
  std::string model_dir, tokenizer_path, data_dir, out_path, log_samples_path, style;
  InferenceWeights weights;        // --precision / --weights (model/weights_io.h)
  Device device = Device::cpu;     // cuda: eval/cuda_forward.h (precision bf16: mixed precision)
  std::optional<KvType> kv_cache;  // --kv-cache: the K/V cache's element type (none: the engine's choice)
  std::vector<std::string> tasks, task_dirs;
  int shots = -1, limit = -1, batch = 32, threads = 0, max_length = 0, max_gen_toks = -1;
  bool progress = true;
  bool allow_non_finite = false;  // score a model whose weights hold NaN/inf (else bad input)
};

// Per-item results of one subtask (kept for the aggregates and --log-samples).
struct MetricValues {
  std::string name;             // acc, acc_norm, exact_match, ...
  std::string filter = "none";  // lm-eval's filter name (strict-match, ...)
  std::vector<double> items;    // per-item values (perplexities: per-doc log-likelihoods)
  std::vector<double> weights;  // perplexities: per-doc words or bytes
  double value = 0.0, stderr_ = NAN;
};

struct SubtaskResult {
  std::string name, group, task, subject;
  int n = 0, n_total = 0;
  std::vector<MetricValues> metrics;
};

// lm-eval's stderr of a mean: sample standard deviation (n - 1) / sqrt(n); NaN for n < 2.
double mean_stderr(const std::vector<double>& v);
// lm-eval's pooled_sample_stderr over subtasks weighted by size.
double pooled_stderr(const std::vector<double>& stderrs, const std::vector<int>& sizes);
// lm-eval's regex filter + take_first, and exact_match's normalisation.
std::string extract_answer(const std::string& text, const ExtractFilter& f);
std::string normalize_for_exact_match(std::string s, const TaskSpec& spec);

// Runs everything; returns the results.json document (also written to opts.out_path if set).
nlohmann::json run_eval(const EvalOptions& opts);
// The Markdown table of a results document; format_metric is one of its cells.
std::string markdown_table(const nlohmann::json& results);
std::string format_metric(const nlohmann::json& value);

}  // namespace mindllm::eval
