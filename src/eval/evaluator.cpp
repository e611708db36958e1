#include "eval/evaluator.h"

#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>

#include "core/error.h"
#include "core/utf8.h"
#include "core/progress.h"
#include "core/file_io.h"
#include "core/regex.h"
#include "model/config.h"
#include "model/weights_io.h"

namespace mindllm::eval {

using nlohmann::json;
namespace fs = std::filesystem;

double mean_stderr(const std::vector<double>& v) {
  if (v.size() < 2) return NAN;
  double mu = 0;
  for (double x : v) mu += x;
  mu /= v.size();
  double ss = 0;
  for (double x : v) ss += (x - mu) * (x - mu);
  return std::sqrt(ss / (v.size() - 1)) / std::sqrt((double)v.size());
}

double pooled_stderr(const std::vector<double>& stderrs, const std::vector<int>& sizes) {
  double num = 0, total = 0;
  for (size_t i = 0; i < sizes.size(); i++) {
    if (std::isnan(stderrs[i])) return NAN;
    num += (sizes[i] - 1) * stderrs[i] * stderrs[i] * sizes[i];
    total += sizes[i];
  }
  if (total - sizes.size() <= 0) return NAN;
  return std::sqrt(num / (total - sizes.size()) / total);
}

// Filters are Python `re` patterns (lm-eval); PCRE2 runs them on characters, not bytes.
std::string extract_answer(const std::string& text, const ExtractFilter& f) {
  if (f.regex.empty()) return text;
  Regex re(f.regex, RegexSyntax::python, "filter " + f.name);
  size_t groups = re.group_count();
  std::vector<std::string> found;  // as Python's re.findall + tuple handling
  re.for_each_match(text, EmptyMatches::python, [&](const std::vector<RegexSpan>& m) {
    auto str = [&](size_t g) { return m[g].matched() ? text.substr(m[g].begin, m[g].size()) : std::string(); };
    if (groups == 0) found.push_back(str(0));
    else if (groups == 1) found.push_back(str(1));
    else {
      std::string first;
      bool any = false;
      for (size_t g = 1; g <= groups; g++)
        if (m[g].matched() && m[g].size() > 0) {
          first = str(g);
          any = true;
          break;
        }
      found.push_back(any ? first
                          : "\x01"
                            "fallback");
    }
  });
  if (found.empty()) return f.fallback;
  int idx = f.group_select < 0 ? (int)found.size() + f.group_select : f.group_select;
  if (idx < 0 || idx >= (int)found.size()) return f.fallback;
  if (found[idx] ==
      "\x01"
      "fallback")
    return f.fallback;
  return py_strip(found[idx]);
}

std::string normalize_for_exact_match(std::string s, const TaskSpec& spec) {
  for (auto& r : spec.ignore_regexes) s = Regex(r, RegexSyntax::python, spec.where).replace_all(s, "");
  if (spec.ignore_case)
    for (auto& c : s)
      if ((unsigned char)c < 0x80) c = (char)std::tolower((unsigned char)c);
  if (spec.ignore_punctuation) {
    std::string o;
    for (char c : s)
      if (!std::ispunct((unsigned char)c)) o += c;
    s = o;
  }
  return s;
}

// ---------------------------------------------------------------- running one task

static MetricValues& metric(SubtaskResult& r, const std::string& name, const std::string& filter = "none") {
  for (auto& m : r.metrics)
    if (m.name == name && m.filter == filter) return m;
  r.metrics.push_back(MetricValues{name, filter, {}, {}, 0.0, NAN});
  return r.metrics.back();
}

static void finish_metrics(SubtaskResult& r) {
  for (auto& m : r.metrics) {
    if (m.weights.empty()) {
      double s = 0;
      for (double x : m.items) s += x;
      m.value = m.items.empty() ? NAN : s / m.items.size();
      m.stderr_ = mean_stderr(m.items);
    } else {
      double ll = 0, w = 0;
      for (size_t i = 0; i < m.items.size(); i++) ll += m.items[i], w += m.weights[i];
      m.value = m.name == "bits_per_byte" ? -ll / w / std::log(2.0) : std::exp(-ll / w);
      m.stderr_ = NAN;
    }
  }
}

static void run_subject(const TaskSpec& spec, const Subject& sub, Scorer& scorer, const EvalOptions& opts,
                        SubtaskResult& res, Progress& prog, int64_t& done, std::string* log) {
  res.name = sub.name;
  res.group = sub.group;
  res.subject = sub.subject;
  res.task = spec.name;
  res.n = static_cast<int>(sub.items.size());
  res.n_total = sub.n_total;
  auto log_line = [&](json j) {
    if (log) *log += j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  };
  if (spec.output_type == OutputType::multiple_choice) {
    const bool want_norm = std::count(spec.metrics.begin(), spec.metrics.end(), "acc_norm") > 0;
    const bool want_bytes = std::count(spec.metrics.begin(), spec.metrics.end(), "acc_bytes") > 0;
    for (auto& m : spec.metrics) metric(res, m);
    const int B = std::max(1, opts.batch);
    for (size_t i0 = 0; i0 < sub.items.size(); i0 += B) {
      size_t i1 = std::min(sub.items.size(), i0 + B);
      std::vector<LLRequest> reqs;
      for (size_t i = i0; i < i1; i++) {
        std::vector<std::string> conts;
        for (auto& c : sub.items[i].choices) conts.push_back(spec.target_delimiter + c);
        reqs.push_back(scorer.encode_request(sub.items[i].context, conts));
      }
      auto scores = scorer.score(reqs);
      for (size_t i = i0; i < i1; i++) {
        const Item& it = sub.items[i];
        const auto& sc = scores[i - i0];
        int pred = 0, pred_norm = 0, pred_bytes = 0;
        for (size_t c = 1; c < sc.size(); c++) {
          if (sc[c].logprob > sc[pred].logprob) pred = c;
          if (sc[c].logprob / utf8::count_chars(it.choices[c]) >
              sc[pred_norm].logprob / utf8::count_chars(it.choices[pred_norm]))
            pred_norm = c;
          if (sc[c].logprob / it.choices[c].size() > sc[pred_bytes].logprob / it.choices[pred_bytes].size())
            pred_bytes = c;
        }
        auto right = [&](int p) { return std::count(it.golds.begin(), it.golds.end(), p) > 0 || p == it.gold; };
        metric(res, "acc").items.push_back(right(pred));
        if (want_norm) metric(res, "acc_norm").items.push_back(right(pred_norm));
        if (want_bytes) metric(res, "acc_bytes").items.push_back(right(pred_bytes));
        if (log) {
          json s = json::array();
          for (auto& x : sc) s.push_back({x.logprob, x.greedy});
          log_line({{"task", sub.name},
                    {"doc_id", i},
                    {"where", it.where},
                    {"doc", it.doc},
                    {"prompt", it.context},
                    {"choices", it.choices},
                    {"target", it.golds.size() > 1 ? json(it.golds) : json(it.gold)},
                    {"scores", s},
                    {"pred", pred},
                    {"pred_norm", pred_norm},
                    {"acc", right(pred) ? 1.0 : 0.0},
                    {"acc_norm", right(pred_norm) ? 1.0 : 0.0}});
        }
      }
      done += i1 - i0;
      prog.update(done);
    }
  } else if (spec.output_type == OutputType::generate_until) {
    int max_gen = opts.max_gen_toks > 0 ? opts.max_gen_toks : spec.max_gen_toks;
    for (auto& f : spec.filters) metric(res, "exact_match", f.name);
    for (size_t i = 0; i < sub.items.size(); i++) {
      const Item& it = sub.items[i];
      std::string resp = scorer.generate(it.context, spec.until, max_gen);
      std::string ref = normalize_for_exact_match(it.target, spec);
      json filtered = json::object();
      for (auto& f : spec.filters) {
        std::string ans = extract_answer(resp, f);
        bool ok = normalize_for_exact_match(ans, spec) == ref;
        metric(res, "exact_match", f.name).items.push_back(ok);
        filtered[f.name] = {{"answer", ans}, {"exact_match", ok ? 1.0 : 0.0}};
      }
      log_line({{"task", sub.name},
                {"doc_id", i},
                {"where", it.where},
                {"doc", it.doc},
                {"prompt", it.context},
                {"target", it.target},
                {"resp", resp},
                {"filtered", filtered}});
      prog.update(++done);
    }
  } else {  // loglikelihood_rolling: perplexity of whole documents
    for (size_t i = 0; i < sub.items.size(); i++) {
      const Item& it = sub.items[i];
      double ll = scorer.rolling_loglikelihood(it.target);
      // words as lm-eval counts them: len(re.split(r"\s+", doc))
      size_t words = 1;
      bool in_space = false;
      for (char c : it.target) {
        bool sp = std::isspace((unsigned char)c);
        if (sp && !in_space) words++;
        in_space = sp;
      }
      for (auto& m : spec.metrics) {
        auto& mv = metric(res, m);
        mv.items.push_back(ll);
        mv.weights.push_back(m == "word_perplexity" ? (double)words : (double)it.target.size());
      }
      log_line({{"task", sub.name},
                {"doc_id", i},
                {"where", it.where},
                {"loglikelihood", ll},
                {"words", words},
                {"bytes", it.target.size()}});
      prog.update(++done);
    }
  }
  finish_metrics(res);
}

// ---------------------------------------------------------------- results.json

// JSON has no NaN or infinity (nlohmann would write null): "N/A" as lm-eval writes a missing
// stderr, and "inf" / "-inf" (a perplexity can overflow).
static json num(double v) {
  if (std::isnan(v)) return "N/A";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

static void put_metrics(json& entry, const std::vector<MetricValues>& ms) {
  for (auto& m : ms) {
    entry[m.name + "," + m.filter] = num(m.value);
    entry[m.name + "_stderr," + m.filter] = num(m.stderr_);
    // Short keys for the unfiltered metrics: results[task]["acc"], ["acc_stderr"].
    if (m.filter == "none") {
      entry[m.name] = num(m.value);
      entry[m.name + "_stderr"] = num(m.stderr_);
    }
  }
}

// Size-weighted aggregate of several results (subtasks or subgroups), as lm-eval's groups.
static SubtaskResult aggregate(const std::string& name, const std::vector<const SubtaskResult*>& parts) {
  SubtaskResult g;
  g.name = name;
  for (auto* p : parts) g.n += p->n, g.n_total += p->n_total;
  if (parts.empty()) return g;
  for (auto& m0 : parts[0]->metrics) {
    MetricValues mv{m0.name, m0.filter, {}, {}, 0.0, NAN};
    std::vector<double> errs;
    std::vector<int> sizes;
    double sum = 0, wsum = 0;
    bool ppl = !m0.weights.empty();
    for (auto* p : parts)
      for (auto& m : p->metrics)
        if (m.name == m0.name && m.filter == m0.filter) {
          sum += m.value * p->n;
          wsum += p->n;
          errs.push_back(m.stderr_);
          sizes.push_back(p->n);
          mv.items.insert(mv.items.end(), m.items.begin(), m.items.end());
          mv.weights.insert(mv.weights.end(), m.weights.begin(), m.weights.end());
        }
    if (ppl) {
      double ll = 0, w = 0;
      for (size_t i = 0; i < mv.items.size(); i++) ll += mv.items[i], w += mv.weights[i];
      mv.value = mv.name == "bits_per_byte" ? -ll / w / std::log(2.0) : std::exp(-ll / w);
    } else {
      mv.value = sum / wsum;
      mv.stderr_ = pooled_stderr(errs, sizes);
    }
    g.metrics.push_back(std::move(mv));
  }
  return g;
}

static std::string iso_now() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

json run_eval(const EvalOptions& opts) {
  if (opts.threads > 0) omp_set_num_threads(opts.threads);
  const bool cuda = opts.device == Device::cuda;
  if (cuda) {
    check_cuda_device();
    if (opts.weights.override_weights)
      bad_input("--weights: quantized weights run on the CPU only (drop --weights with --device cuda)");
    if (opts.kv_cache == KvType::q8_0)
      bad_input("--kv-cache q8_0 runs on the CPU only (f32 or bf16 with --device cuda)");
  }
  // Everything about the tasks is checked before the model loads: bad files fail fast.
  std::vector<TaskSpec> specs;
  std::vector<std::vector<Subject>> subjects;
  int64_t total_items = 0;
  for (auto& t : opts.tasks) {
    specs.push_back(load_task_spec(t, opts.task_dirs, opts.style));
    subjects.push_back(load_subjects(specs.back(), opts.data_dir, opts.limit, opts.shots));
    for (auto& s : subjects.back()) total_items += s.items.size();
  }
  std::string weights;
  ModelConfig cfg = resolve_model_dir(opts.model_dir, &weights);
  Model model(cfg);
  load_for_inference(model, weights, opts.allow_non_finite, cuda ? InferenceWeights{} : opts.weights);
  std::string tok_path = opts.tokenizer_path.empty() ? weights : opts.tokenizer_path;
  Tokenizer tok = Tokenizer::load(tok_path);
  int max_length = opts.max_length > 0 ? opts.max_length : cfg.max_positions;
  Scorer scorer(model, tok, max_length,
                cuda ? std::make_unique<CudaForward>(model, opts.weights.matmul == Precision::bf16) : nullptr,
                opts.kv_cache);

  // --log-samples is collected here and written atomically at the end, with results.json: a run
  // that fails leaves an existing file as it was.
  std::string log;
  json results = json::object(), groups = json::object(), group_subtasks = json::object(), nshot = json::object(),
       nsamples = json::object(), hib = json::object(), configs = json::object();
  auto t0 = std::chrono::steady_clock::now();
  int64_t done = 0;
  Progress prog("eval", static_cast<double>(total_items), "items", opts.progress);
  for (size_t ti = 0; ti < specs.size(); ti++) {
    const TaskSpec& spec = specs[ti];
    std::vector<SubtaskResult> subs(subjects[ti].size());
    for (size_t si = 0; si < subjects[ti].size(); si++) {
      run_subject(spec, subjects[ti][si], scorer, opts, subs[si], prog, done,
                  opts.log_samples_path.empty() ? nullptr : &log);
      const int shots = opts.shots >= 0 ? opts.shots : spec.num_fewshot;
      nshot[subs[si].name] = shots;
      nsamples[subs[si].name] = {{"original", subs[si].n_total}, {"effective", subs[si].n}};
      json hb = json::object();
      for (auto& m : subs[si].metrics)
        hb[m.name] = !(m.name.find("perplexity") != std::string::npos || m.name == "bits_per_byte");
      hib[subs[si].name] = hb;
    }
    json cfgj = spec.j;
    cfgj.erase("styles");
    configs[spec.name] = cfgj;
    auto put = [&](const SubtaskResult& r, const std::string& alias) {
      json e = {{"alias", alias}, {"n", r.n}};
      put_metrics(e, r.metrics);
      results[r.name] = e;
    };
    if (subs.size() == 1 && subs[0].name == spec.name) {
      put(subs[0], spec.name);
      continue;
    }
    // Subgroups (mmlu_stem, ...) when the spec names them, then the task group over them.
    std::map<std::string, std::vector<const SubtaskResult*>> by_group;
    for (auto& s : subs) by_group[s.group].push_back(&s);
    std::vector<SubtaskResult> subgroups;
    std::vector<const SubtaskResult*> top;
    json members = json::array();
    for (auto& [g, parts] : by_group) {
      if (g.empty()) {
        for (auto* p : parts) top.push_back(p), members.push_back(p->name);
        continue;
      }
      subgroups.push_back(aggregate(g, parts));
      json sm = json::array();
      for (auto* p : parts) sm.push_back(p->name);
      group_subtasks[g] = sm;
    }
    for (auto& sg : subgroups) top.push_back(&sg), members.push_back(sg.name);
    SubtaskResult group = aggregate(spec.name, top);
    group_subtasks[spec.name] = members;
    put(group, spec.name);
    json ge = results[spec.name];
    groups[spec.name] = ge;
    for (auto& sg : subgroups) {
      put(sg, " - " + sg.name);
      groups[sg.name] = results[sg.name];
    }
    for (auto& s : subs) put(s, (s.group.empty() ? " - " : "  - ") + s.subject);
  }
  prog.finish(done);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  json out = {{"results", results},
              {"groups", groups},
              {"group_subtasks", group_subtasks},
              {"configs", configs},
              {"n-shot", nshot},
              {"higher_is_better", hib},
              {"n-samples", nsamples},
              {"config",
               {{"model", "mindllm"},
                {"model_dir", opts.model_dir},
                {"model_type", cfg.model_type()},
                {"num_parameters", cfg.num_parameters()},
                {"tokenizer", tok_path},
                {"num_fewshot", opts.shots >= 0 ? json(opts.shots) : json("task default")},
                {"limit", opts.limit >= 0 ? json(opts.limit) : json(nullptr)},
                {"batch_size", opts.batch},
                {"max_length", max_length},
                {"prompt_style", opts.style.empty() ? "lm-eval" : opts.style},
                {"threads", omp_get_max_threads()},
                {"device", name(opts.device)}}},
              {"date", (double)std::time(nullptr)},
              {"date_iso", iso_now()},
              {"total_evaluation_time_seconds", secs},
              {"items", done},
              {"items_per_second", secs > 0 ? done / secs : 0.0},
              {"tokens_computed", scorer.tokens_computed()}};
  if (!opts.log_samples_path.empty()) write_file_atomic(opts.log_samples_path, log);
  if (!opts.out_path.empty())
    write_file_atomic(opts.out_path, out.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  return out;
}

// A table cell: 4 decimals as lm-eval's table prints them while that stays short, else
// scientific notation (a word perplexity of 2.8e21 is "2.8172e+21", not its first six digits).
std::string format_metric(const json& v) {
  if (v.is_string()) return v.get<std::string>();  // "N/A", "inf" (see num)
  if (!v.is_number()) return "N/A";
  double x = v.get<double>();
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[64];
  double a = std::fabs(x);
  std::snprintf(buf, sizeof buf, a != 0 && (a >= 1e6 || a < 1e-4) ? "%.4e" : "%.4f", x);
  return buf;
}

std::string markdown_table(const json& r) {
  std::string s = "| Task | Metric | Filter | n | Value | Stderr |\n|---|---|---|---:|---:|---:|\n";
  for (auto& [name, e] : r["results"].items()) {
    std::string alias = e.value("alias", name);
    for (auto& [k, v] : e.items()) {
      size_t comma = k.find(',');
      if (comma == std::string::npos || k.find("_stderr") != std::string::npos) continue;
      std::string m = k.substr(0, comma), f = k.substr(comma + 1);
      json se = e.value(m + "_stderr," + f, json("N/A"));
      s += "| " + alias + " | " + m + " | " + f + " | " + std::to_string(e.value("n", 0)) + " | " + format_metric(v) +
           " | " + format_metric(se) + " |\n";
    }
  }
  return s;
}

}  // namespace mindllm::eval
