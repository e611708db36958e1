#include "report/inputs.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace mindllm::report {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool slurp(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return !f.bad();
}

// Python's json writes NaN, Infinity and -Infinity bare, which is not JSON: quote them (outside
// strings) so the line parses and the value reads as non-finite.
std::string quote_non_finite(const std::string& line) {
  std::string o;
  bool in_str = false;
  for (size_t i = 0; i < line.size(); i++) {
    char c = line[i];
    if (in_str) {
      o += c;
      if (c == '\\' && i + 1 < line.size()) o += line[++i];
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    bool done = false;
    for (const char* w : {"-Infinity", "Infinity", "NaN"}) {
      size_t n = std::char_traits<char>::length(w);
      if (line.compare(i, n, w) == 0) {
        o += '"' + std::string(w) + '"';
        i += n - 1;
        done = true;
        break;
      }
    }
    if (!done) o += c;
  }
  return o;
}

// A numeric field: its value; null or "NaN"/"Infinity"/"-Infinity" (non-finite values as JSON
// writers spell them) as non-finite; NaN when absent or of another type.
double number_field(const json& j, const char* key, bool* present = nullptr) {
  auto it = j.find(key);
  if (present) *present = it != j.end();
  if (it == j.end()) return kNaN;
  if (it->is_number()) return it->get<double>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    if (s == "Infinity" || s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity" || s == "-inf") return -std::numeric_limits<double>::infinity();
  }
  return kNaN;
}

std::string base_name(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  std::string n = p.filename().string();
  return n.empty() || n == "." ? fs::absolute(p).lexically_normal().filename().string() : n;
}

// The final checkpoint of a run directory: ckpt/<ckpt/latest>, else the highest ckpt/step-*.
std::string final_checkpoint(const std::string& run_dir) {
  fs::path ck = fs::path(run_dir) / "ckpt";
  std::string latest;
  if (slurp((ck / "latest").string(), &latest)) {
    while (!latest.empty() && std::isspace(static_cast<unsigned char>(latest.back()))) latest.pop_back();
    if (!latest.empty() && fs::exists(ck / latest / "config.json")) return (ck / latest).string();
  }
  std::error_code ec;
  std::string best;
  for (auto it = fs::directory_iterator(ck, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (n.rfind("step-", 0) == 0 && fs::exists(it->path() / "config.json") && n > best) best = n;
  }
  return best.empty() ? "" : (ck / best).string();
}

void read_select(const std::string& path, const json& j, Inputs* in) {
  SelectReport r{base_name(fs::path(path).parent_path().string()), path, {}, json::object()};
  auto to_vec = [](const json& a, std::vector<double>* v) {
    if (!a.is_array()) return false;
    for (const json& x : a) {
      if (!x.is_number()) return false;
      v->push_back(x.get<double>());
    }
    return true;
  };
  if (auto h = j.find("histograms"); h != j.end()) {
    std::vector<std::pair<std::string, json>> items;
    if (h->is_array())
      for (const json& e : *h)
        items.emplace_back(e.is_object() && e.value("name", json()).is_string() ? e["name"].get<std::string>() : "", e);
    else if (h->is_object())
      for (auto& [k, v] : h->items()) items.emplace_back(k, v);
    for (auto& [name, e] : items) {
      SelectHistogram sh{name.empty() ? "histogram " + std::to_string(r.histograms.size() + 1) : name, {}, {}, {}};
      bool ok = e.is_object() && to_vec(e.value("edges", json()), &sh.edges) &&
                to_vec(e.value("counts", json()), &sh.counts) && sh.edges.size() == sh.counts.size() + 1 &&
                (!e.contains("kept") || (to_vec(e["kept"], &sh.kept) && sh.kept.size() == sh.counts.size()));
      if (ok) r.histograms.push_back(std::move(sh));
      else
        in->problems.push_back(path + ": histogram '" + sh.name +
                               "' needs \"edges\" (n+1 numbers) and \"counts\" (n numbers)" +
                               " (and \"kept\", if given, n numbers): left out");
    }
  }
  if (auto s = j.find("scores"); s != j.end() && s->is_object())
    for (auto& [name, v] : s->items()) {
      std::vector<double> vals;
      if (to_vec(v, &vals)) r.histograms.push_back(bin_scores(name, vals));
      else in->problems.push_back(path + ": scores '" + name + "' is not a list of numbers: left out");
    }
  for (auto& [k, v] : j.items())
    if (v.is_primitive()) r.summary[k] = v;
  in->selects.push_back(std::move(r));
}

// A .json input: results.json, a data report or a select report, told apart by their keys.
void read_json_input(const std::string& path, Inputs* in) {
  std::string text;
  if (!slurp(path, &text)) {
    in->problems.push_back(path + ": cannot be read");
    return;
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) j = json::parse(quote_non_finite(text), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    in->problems.push_back(path + ": not a JSON object" +
                           (text.empty() ? " (empty file)" : " (truncated or damaged?)"));
    return;
  }
  if (j.contains("results") && j["results"].is_object()) {
    // Named after the model evaluated: its directory, with the run's name for a checkpoint
    // (".../run/ckpt/step-0000040" -> "run step-0000040").
    std::string name = base_name(fs::path(path).parent_path().string());
    const json& model_dir =
        j.contains("config") && j["config"].is_object() ? j["config"].value("model_dir", json()) : json();
    if (model_dir.is_string() && !model_dir.get<std::string>().empty()) {
      fs::path m = fs::path(model_dir.get<std::string>()).lexically_normal();
      if (m.filename().empty()) m = m.parent_path();
      name = m.filename().string();
      if (name.rfind("step-", 0) == 0 && m.parent_path().filename() == "ckpt")
        name = m.parent_path().parent_path().filename().string() + " " + name;
    }
    in->evals.push_back({name, path, std::move(j)});
  } else if (j.contains("documents") && j["documents"].is_object()) {
    in->data.push_back({base_name(fs::path(path).parent_path().string()), path, std::move(j)});
  } else if (j.contains("histograms") || j.contains("scores") || j.value("kind", json()) == "select") {
    read_select(path, j, in);
  } else {
    in->problems.push_back(path +
                           ": not an eval results.json ('results'), a data prepare report ('documents') or a select "
                           "report ('histograms' or 'scores')");
  }
}

void add_run(const std::string& dir, const std::string& metrics, Inputs* in) {
  RunMetrics r = read_metrics(metrics, &in->problems);
  r.path = dir;
  r.name = base_name(dir);
  r.final_checkpoint = final_checkpoint(dir);
  in->runs.push_back(std::move(r));
}

}  // namespace

RunMetrics read_metrics(const std::string& path, std::vector<std::string>* problems) {
  RunMetrics r;
  std::string text;
  if (!slurp(path, &text)) {
    problems->push_back(path + ": cannot be read");
    return r;
  }
  if (text.empty()) {
    problems->push_back(path + ": empty: the run has logged no step yet");
    return r;
  }
  struct Row {
    double loss, lr, grad_norm, tps, mfu, val, dt, tokens;
    bool skipped;
  };
  std::map<double, Row> rows;
  int bad = 0, first_bad = 0, line_no = 0;
  bool cut = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    line_no++;
    if (nl == std::string::npos) {
      problems->push_back(path + ": line " + std::to_string(line_no) + " is cut off (" +
                          std::to_string(text.size() - pos) + " bytes without a newline): left out");
      cut = true;
      break;
    }
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) j = json::parse(quote_non_finite(line), nullptr, false);
    double step = j.is_object() ? number_field(j, "step") : kNaN;
    if (!std::isfinite(step)) {
      if (bad++ == 0) first_bad = line_no;
      continue;
    }
    Row w{number_field(j, "loss"),
          number_field(j, "lr"),
          number_field(j, "grad_norm"),
          number_field(j, "tokens_per_s"),
          number_field(j, "mfu"),
          number_field(j, "val_loss"),
          number_field(j, "step_time_s"),
          number_field(j, "tokens"),
          j.contains("skipped") && j["skipped"].is_boolean() && j["skipped"].get<bool>()};
    rows[step] = w;
  }
  if (bad > 0)
    problems->push_back(path + ": " + std::to_string(bad) +
                        " line(s) not a JSON object with a numeric \"step\" (first: line " + std::to_string(first_bad) +
                        "): left out");
  double tokens = 0;
  bool have_tokens = false;
  int first_non_finite = -1;
  for (auto& [step, w] : rows) {
    r.step.push_back(step);
    r.loss.push_back(w.loss);
    r.lr.push_back(w.lr);
    r.grad_norm.push_back(w.grad_norm);
    r.tokens_per_s.push_back(w.tps);
    r.mfu.push_back(w.mfu);
    r.val_loss.push_back(w.val);
    if (std::isfinite(w.tokens)) tokens = w.tokens, have_tokens = true;
    else if (std::isfinite(w.tps) && std::isfinite(w.dt)) tokens += std::round(w.tps * w.dt), have_tokens = true;
    r.tokens.push_back(have_tokens ? tokens : kNaN);
    if (!std::isfinite(w.loss)) {
      r.non_finite_losses++;
      if (first_non_finite < 0) first_non_finite = static_cast<int>(step);
    }
    if (w.skipped) r.skipped_steps++;
  }
  if (r.non_finite_losses > 0)
    problems->push_back(path + ": " + std::to_string(r.non_finite_losses) +
                        " step(s) without a finite loss (NaN, infinite or missing; first at step " +
                        std::to_string(first_non_finite) + "): gaps in the loss curve, marked in red");
  if (rows.empty() && bad == 0 && !cut) problems->push_back(path + ": no logged step");
  return r;
}

SelectHistogram bin_scores(const std::string& name, const std::vector<double>& values, int bins) {
  SelectHistogram h{name, {}, {}, {}};
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : values)
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!(lo <= hi)) return h;
  if (hi == lo) hi = lo + 1;
  for (int i = 0; i <= bins; i++) h.edges.push_back(lo + (hi - lo) * i / bins);
  h.counts.assign(bins, 0);
  for (double v : values)
    if (std::isfinite(v)) h.counts[std::min(bins - 1, static_cast<int>((v - lo) / (hi - lo) * bins))]++;
  return h;
}

Inputs read_inputs(const std::vector<std::string>& paths) {
  Inputs in;
  for (const std::string& p : paths) {
    std::error_code ec;
    fs::file_status st = fs::status(p, ec);
    if (ec || !fs::exists(st)) {
      in.problems.push_back(p + ": no such file or directory");
    } else if (fs::is_directory(st)) {
      fs::path d(p);
      bool any = false;
      if (fs::exists(d / "metrics.jsonl")) add_run(p, (d / "metrics.jsonl").string(), &in), any = true;
      for (const char* f : {"results.json", "report.json"})
        if (fs::exists(d / f)) read_json_input((d / f).string(), &in), any = true;
      if (!any && fs::exists(d / "ckpt")) {
        in.problems.push_back(p + ": a run directory without metrics.jsonl");
        in.runs.push_back({base_name(p), p, {}, {}, {}, {}, {}, {}, {}, {}, 0, 0, final_checkpoint(p)});
      } else if (!any) {
        in.problems.push_back(p + ": no metrics.jsonl, results.json or report.json in this directory");
      }
    } else if (p.ends_with(".jsonl")) {
      add_run(fs::path(p).parent_path().string(), p, &in);
    } else {
      read_json_input(p, &in);
    }
  }
  // Unique run names, so the legends tell runs apart.
  for (size_t i = 0; i < in.runs.size(); i++) {
    auto taken = [&](const std::string& n) {
      return std::any_of(in.runs.begin(), in.runs.begin() + i, [&](const RunMetrics& r) { return r.name == n; });
    };
    for (int n = 2; taken(in.runs[i].name); n++)
      in.runs[i].name = base_name(in.runs[i].path) + " (" + std::to_string(n) + ")";
  }
  return in;
}

std::vector<std::string> watched_files(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec))
      for (const char* f : {"metrics.jsonl", "results.json", "report.json", "ckpt/latest"})
        files.push_back((fs::path(p) / f).string());
    else files.push_back(p);
  }
  return files;
}

}  // namespace mindllm::report
