// The evaluation part of the report: each results.json (lm-eval's layout, docs/eval.md) as a table
// of tasks, groups and subjects by metric; with two or more, one table comparing them against the
// first (before/after), the differences coloured by the metric's higher_is_better.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <set>

#include "report/page.h"
#include "report/svg.h"

namespace mindllm::report {

namespace {

using nlohmann::json;

// The filtered metric keys of one task entry ("acc,none", "exact_match,strict-match"), without
// their stderr keys.
std::vector<std::string> metric_keys(const json& task) {
  std::vector<std::string> keys;
  if (!task.is_object()) return keys;
  for (auto& [k, v] : task.items())
    if (k.find(',') != std::string::npos && k.find("_stderr,") == std::string::npos) keys.push_back(k);
  return keys;
}

std::string stderr_key(const std::string& key) {
  size_t c = key.find(',');
  return key.substr(0, c) + "_stderr" + key.substr(c);
}

// "acc,none" -> "acc"; "exact_match,strict-match" -> "exact_match (strict-match)".
std::string metric_name(const std::string& key) {
  size_t c = key.find(',');
  std::string f = key.substr(c + 1);
  return key.substr(0, c) + (f == "none" ? "" : " (" + f + ")");
}

double value_of(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string() && v.get<std::string>() == "inf") return INFINITY;
  return NAN;
}

std::string value_cell(const json& v) {
  if (v.is_number_integer()) return thousands(v.get<double>());
  if (v.is_number()) return cell_number(v.get<double>(), true);
  if (v.is_string()) return xml_escape(v.get<std::string>());
  return "–";
}

// Tasks in display order: each group followed by its members (indented), then the rest.
std::vector<std::pair<std::string, int>> task_order(const json& r) {
  const json& results = r["results"];
  const json gs =
      r.contains("group_subtasks") && r["group_subtasks"].is_object() ? r["group_subtasks"] : json::object();
  std::set<std::string> children, seen;
  for (auto& [g, members] : gs.items())
    if (members.is_array())
      for (const json& m : members)
        if (m.is_string()) children.insert(m.get<std::string>());
  std::vector<std::pair<std::string, int>> order;
  std::function<void(const std::string&, int)> visit = [&](const std::string& t, int depth) {
    if (!seen.insert(t).second || depth > 8) return;
    if (results.contains(t)) order.emplace_back(t, depth);
    if (gs.contains(t) && gs[t].is_array())
      for (const json& m : gs[t])
        if (m.is_string()) visit(m.get<std::string>(), depth + 1);
  };
  for (auto& [t, v] : results.items())
    if (!children.count(t)) visit(t, 0);
  for (auto& [t, v] : results.items()) visit(t, 0);  // members of groups not in results
  return order;
}

bool higher_is_better(const json& r, const std::string& task, const std::string& key) {
  std::string m = key.substr(0, key.find(','));
  if (r.contains("higher_is_better") && r["higher_is_better"].is_object() && r["higher_is_better"].contains(task)) {
    const json& h = r["higher_is_better"][task];
    if (h.is_object() && h.contains(m) && h[m].is_boolean()) return h[m].get<bool>();
  }
  return !(m.find("perplexity") != std::string::npos || m == "bits_per_byte");
}

std::string task_cell(const std::string& task, int depth, const json& entry, bool group) {
  std::string alias = entry.is_object() && entry.contains("alias") && entry["alias"].is_string()
                          ? entry["alias"].get<std::string>()
                          : task;
  size_t a = alias.find_first_not_of(" -");  // lm-eval indents aliases with " - "; we indent ourselves
  alias = a == std::string::npos ? task : alias.substr(a);
  return "<td class=\"task\" style=\"padding-left:" + std::to_string(0.4 + 1.2 * depth) + "em\">" +
         (group ? "<b>" : "") + xml_escape(alias) + (group ? "</b>" : "") + "</td>";
}

std::string one_table(const EvalResults& e) {
  const json& res = e.results["results"];
  std::vector<std::string> cols;
  for (auto& [t, v] : res.items())
    for (const std::string& k : metric_keys(v))
      if (std::find(cols.begin(), cols.end(), k) == cols.end()) cols.push_back(k);
  const json groups =
      e.results.contains("groups") && e.results["groups"].is_object() ? e.results["groups"] : json::object();
  std::string h = "<table class=\"eval\"><tr><th>task</th><th>n</th>";
  for (const std::string& c : cols) h += "<th>" + xml_escape(metric_name(c)) + "</th>";
  h += "</tr>\n";
  for (auto& [t, depth] : task_order(e.results)) {
    const json& v = res[t];
    h += "<tr>" + task_cell(t, depth, v, groups.contains(t)) + "<td>" +
         (v.is_object() && v.contains("n") ? value_cell(v["n"]) : std::string("")) + "</td>";
    for (const std::string& c : cols) {
      h += "<td>";
      if (v.is_object() && v.contains(c)) {
        h += value_cell(v[c]);
        std::string sk = stderr_key(c);
        if (v.contains(sk) && v[sk].is_number())
          h += " <span class=\"stderr\">± " + cell_number(v[sk].get<double>(), true) + "</span>";
      }
      h += "</td>";
    }
    h += "</tr>\n";
  }
  return h + "</table>\n";
}

// Rows (task, metric) of the first results; a column per results, and the change from the first.
std::string comparison_table(const std::vector<EvalResults>& evals) {
  const json& base = evals[0].results;
  std::string h =
      "<table class=\"eval compare\"><tr><th>task</th><th>metric</th><th>" + xml_escape(evals[0].name) + "</th>";
  for (size_t i = 1; i < evals.size(); i++) h += "<th>" + xml_escape(evals[i].name) + "</th><th>Δ</th>";
  h += "</tr>\n";
  const json groups = base.contains("groups") && base["groups"].is_object() ? base["groups"] : json::object();
  for (auto& [t, depth] : task_order(base)) {
    const json& v = base["results"][t];
    for (const std::string& k : metric_keys(v)) {
      h += "<tr>" + task_cell(t, depth, v, groups.contains(t)) + "<td>" + xml_escape(metric_name(k)) + "</td><td>" +
           value_cell(v[k]) + "</td>";
      for (size_t i = 1; i < evals.size(); i++) {
        const json& o = evals[i].results["results"];
        if (!o.contains(t) || !o[t].is_object() || !o[t].contains(k)) {
          h += "<td>–</td><td></td>";
          continue;
        }
        double d = value_of(o[t][k]) - value_of(v[k]);
        std::string cls;
        if (std::isfinite(d) && d != 0) cls = (d > 0) == higher_is_better(base, t, k) ? "better" : "worse";
        char buf[32];
        std::snprintf(buf, sizeof buf, "%+.4f", d);
        h += "<td>" + value_cell(o[t][k]) + "</td><td" + (cls.empty() ? "" : " class=\"" + cls + "\"") + ">" +
             (std::isfinite(d) ? buf : "–") + "</td>";
      }
      h += "</tr>\n";
    }
  }
  return h + "</table>\n";
}

std::string config_line(const EvalResults& e) {
  std::string s = "<p class=\"note\"><code>" + xml_escape(e.path) + "</code>";
  const json& r = e.results;
  if (r.contains("config") && r["config"].is_object()) {
    const json& c = r["config"];
    for (const char* k : {"model_dir", "model_type", "num_parameters", "num_fewshot", "limit", "device"})
      if (c.contains(k) && c[k].is_primitive() && !c[k].is_null())
        s += " · " + std::string(k) + " " + xml_escape(c[k].is_string() ? c[k].get<std::string>() : c[k].dump());
  }
  if (r.contains("total_evaluation_time_seconds") && r["total_evaluation_time_seconds"].is_number())
    s += " · " + cell_number(r["total_evaluation_time_seconds"].get<double>()) + " s";
  return s + "</p>\n";
}

}  // namespace

void evaluation_section(const std::vector<EvalResults>& evals, Section* s) {
  if (evals.empty()) return;
  s->html += "<section id=\"evaluation\"><h2>Evaluation</h2>\n";
  if (evals.size() >= 2) {
    s->html += "<h3>" + xml_escape(evals[0].name) + " against the others (Δ = other − first; green: better)</h3>\n";
    s->html += comparison_table(evals);
  }
  for (const EvalResults& e : evals) {
    s->html += "<h3>" + xml_escape(e.name) + "</h3>\n" + config_line(e);
    s->html += one_table(e);
  }
  s->html += "</section>\n";
}

}  // namespace mindllm::report
