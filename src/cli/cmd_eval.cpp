// mindllm eval: benchmarks (MMLU, CMMLU, C-Eval, HellaSwag, ARC, GSM8K, AGIEval, or a task
// spec file) scored as lm-evaluation-harness scores them. See docs/eval.md.
#include <cstdio>
#include <sstream>

#include "cli/command.h"
#include "cli/output.h"
#include "cli/validate.h"
#include "core/error.h"
#include "core/file_io.h"
#include "eval/evaluator.h"

namespace mindllm::cli {

static int run_eval_cmd(int argc, char** argv) {
  CLI::App app{"Evaluate a model on benchmarks, scored as lm-evaluation-harness scores them.", "mindllm eval"};
  eval::EvalOptions o;
  std::string tasks;
  bool list = false;
  OutputFlags out;
  app.add_option("--model", o.model_dir, "model directory (config.json + model.safetensors + tokenizer.json)");
  app.add_option("--tasks", tasks, "comma-separated built-in tasks or task spec files (.json/.yaml)");
  app.add_option("--data-dir", o.data_dir, "root holding each task's files (<root>/mmlu, <root>/cmmlu, ...)");
  app.add_option("--shots", o.shots, "few-shot examples (default: each task's own)");
  app.add_option("--limit", o.limit, "first N items of each subject");
  app.add_option("--batch", o.batch, "questions scored per pass")->capture_default_str();
  add_threads_option(app, o.threads);
  add_inference_weights_options(app, o.weights);
  add_device_option(app, o.device);
  add_kv_cache_option(app, o.kv_cache);
  app.add_option("--out", o.out_path, "write results.json (lm-eval's layout) here");
  app.add_option("--log-samples", o.log_samples_path, "write each prompt, choice scores and prediction (JSONL)");
  app.add_option("--style", o.style, "prompt style: lm-eval (default) or opencompass (C-Eval, CMMLU)");
  app.add_option("--tokenizer", o.tokenizer_path, "tokenizer (default: the model directory's)");
  app.add_option("--max-length", o.max_length, "context length (default: the model's max_position_embeddings)");
  app.add_option("--max-gen-toks", o.max_gen_toks, "generation tasks: most new tokens (default: the task's, 256)");
  app.add_option("--task-dir", o.task_dirs, "extra directories with task specs (<name>.json)");
  app.add_flag("--allow-non-finite", o.allow_non_finite, "score a model whose weights hold NaN or infinities");
  add_output_flags(app, out);
  app.add_flag("--list-tasks", list, "print the built-in task names and exit");
  parse_args(app, argc, argv);
  if (list) {
    for (auto& n : eval::builtin_task_names(o.task_dirs)) std::printf("%s\n", n.c_str());
    return 0;
  }
  if (o.model_dir.empty()) bad_input("--model is required");
  if (tasks.empty()) bad_input("--tasks is required");
  if (o.data_dir.empty()) bad_input("--data-dir is required");
  // Numeric flags: a flag not given keeps its "default" value (-1 or 0); a given value out of
  // range is an error, not silently "all items" or "the task's default".
  if (o.batch < 1) bad_input("--batch must be >= 1");
  if (app.count("--limit") && o.limit < 1) bad_input("--limit must be >= 1 (items per subject)");
  if (app.count("--shots") && o.shots < 0) bad_input("--shots must be >= 0");
  if (o.threads < 0) bad_input("--threads must be >= 0 (0: all cores)");
  if (app.count("--max-length") && o.max_length < 1) bad_input("--max-length must be >= 1");
  if (app.count("--max-gen-toks") && o.max_gen_toks < 1) bad_input("--max-gen-toks must be >= 1");
  // Outputs are checked before the model loads and the work starts.
  if (!o.out_path.empty()) check_output_file(o.out_path, "--out");
  if (!o.log_samples_path.empty()) check_output_file(o.log_samples_path, "--log-samples");
  if (o.style == "lm-eval") o.style.clear();
  std::stringstream ss(tasks);
  std::string t;
  while (std::getline(ss, t, ','))
    if (!t.empty()) o.tasks.push_back(t);
  o.progress = !out.quiet;
  nlohmann::json r = eval::run_eval(o);
  if (!out.json) std::printf("%s", eval::markdown_table(r).c_str());
  char text[160];
  std::snprintf(text, sizeof text, "%lld items in %.1f s (%.2f items/s)", (long long)r["items"].get<int64_t>(),
                r["total_evaluation_time_seconds"].get<double>(), r["items_per_second"].get<double>());
  print_summary(out, "eval", text + (o.out_path.empty() ? "" : ", results in " + o.out_path),
                {{"results", r["results"]},
                 {"items", r["items"]},
                 {"seconds", r["total_evaluation_time_seconds"]},
                 {"out", o.out_path}});
  return 0;
}

MINDLLM_COMMAND("eval", "evaluate a model on benchmarks (lm-evaluation-harness scoring)", run_eval_cmd);

}  // namespace mindllm::cli
