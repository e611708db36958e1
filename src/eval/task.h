// Task specs: a benchmark described as data (JSON or YAML), not code. A spec names its source
// files under --data-dir, their format and fields, the prompt template, the choices and answer,
// the few-shot source and the metrics; every built-in task (configs/tasks/*.json) is one.
// The prompt is built exactly as lm-evaluation-harness builds it:
//   context = description + Σ_shots (text(shot) + target_delimiter + target(shot) + fewshot_delimiter)
//             + text(doc)
// and each choice is scored as the continuation target_delimiter + choice. See docs/eval.md.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/docs.h"

namespace mindllm::eval {

enum class OutputType { multiple_choice, generate_until, loglikelihood_rolling };

struct ExtractFilter {  // generation answer extraction (lm-eval's regex + take_first filters)
  std::string name;     // e.g. strict-match
  std::string regex;    // empty: the whole generation
  int group_select = 0;
  std::string fallback = "[invalid]";
};

struct TaskSpec {
  nlohmann::json j;   // the spec as read (style overrides applied)
  std::string name;   // group / task name (mmlu, arc_easy, ...)
  std::string where;  // where the spec came from
  OutputType output_type = OutputType::multiple_choice;
  int num_fewshot = 0;
  std::string target_delimiter = " ", fewshot_delimiter = "\n\n";
  std::vector<std::string> metrics;  // acc, acc_norm, acc_bytes | exact_match | word_perplexity, ...
  // generation
  std::vector<std::string> until;
  int max_gen_toks = 256;
  std::vector<ExtractFilter> filters;
  std::vector<std::string> ignore_regexes;
  bool ignore_case = false, ignore_punctuation = false;
};

// Finds a spec: a path to a .json/.yaml/.yml file, or a built-in name (compiled in, or
// <dir>/<name>.json in one of task_dirs). `style` applies the spec's "styles" overrides.
TaskSpec load_task_spec(const std::string& name_or_path, const std::vector<std::string>& task_dirs,
                        const std::string& style);
std::vector<std::string> builtin_task_names(const std::vector<std::string>& task_dirs);

// One evaluation item, with its prompt already built.
struct Item {
  std::string where;                 // file:line of the test item
  std::string context;               // the full prompt (few-shot prefix + the item)
  std::vector<std::string> choices;  // multiple choice: the choice texts (without delimiter)
  int gold = -1;                     // multiple choice: index of the answer (the first, if several)
  std::vector<int> golds;            // multiple choice: every right answer (AGIEval's multi-answer items)
  std::string target;                // generation: the reference answer text
  nlohmann::json doc;                // the raw item (for --log-samples)
};

struct Subject {
  std::string name;     // subtask name as lm-eval names it (mmlu_abstract_algebra)
  std::string subject;  // the bare subject (abstract_algebra)
  std::string group;    // optional subgroup (mmlu_stem), "" if none
  std::string test_file, fewshot_file;
  int n_total = 0;  // items in the file before --limit
  std::vector<Item> items;
};

// Reads every subject of the task from data_root/<spec data dir>, takes the first `limit`
// items of each (limit < 0: all), builds prompts with `shots` few-shot examples (< 0: the
// spec's default). Malformed files are bad input naming the file and line.
std::vector<Subject> load_subjects(const TaskSpec& spec, const std::string& data_root, int limit, int shots);

// Helpers, exposed for tests.
std::string render_template(const std::string& tmpl, const nlohmann::json& doc, const std::string& where);
std::string py_strip(const std::string& s);   // Python str.strip() (Unicode whitespace)
std::string py_rstrip(const std::string& s);  // Python str.rstrip()
std::string hellaswag_preprocess(const std::string& s);

}  // namespace mindllm::eval
