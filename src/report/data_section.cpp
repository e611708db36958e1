// The data part of the report: a `data prepare` report.json (docs/data.md) as a funnel (documents
// read, what each filter and the deduplication removed, kept) with per-language counts; a `select`
// report's score histograms.
#include <algorithm>
#include <cmath>

#include "report/page.h"
#include "report/svg.h"

namespace mindllm::report {

namespace {

using nlohmann::json;

// The order in which `data prepare` removes documents (src/data/prepare.cpp: cleaning, then the
// filters in src/data/filters.cpp's order, then exact and near deduplication). Names the report
// holds that are not listed here go after the filters, before deduplication.
const std::vector<std::string>& pipeline_order() {
  static const std::vector<std::string> order = {"empty_after_cleaning",
                                                 "language",
                                                 "length",
                                                 "han_ratio",
                                                 "punctuation",
                                                 "char_repeat",
                                                 "mean_word_length",
                                                 "symbol_ratio",
                                                 "alpha_words",
                                                 "stop_words",
                                                 "digit_ratio",
                                                 "bullet_lines",
                                                 "ellipsis_lines",
                                                 "mean_line_length",
                                                 "dup_lines",
                                                 "dup_line_chars",
                                                 "dup_paragraphs",
                                                 "dup_paragraph_chars",
                                                 "top_ngram",
                                                 "dup_ngram"};
  return order;
}

double num(const json& j, std::initializer_list<const char*> path) {
  const json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return NAN;
    p = &(*p)[k];
  }
  return p->is_number() ? p->get<double>() : NAN;
}

std::string percent(double part, double whole) {
  if (!(whole > 0) || !std::isfinite(part)) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * part / whole);
  return buf;
}

// The removal reasons in pipeline order.
std::vector<std::string> reasons(const json& removed) {
  std::vector<std::string> names;
  if (!removed.is_object()) return names;
  for (const std::string& n : pipeline_order())
    if (removed.contains(n)) names.push_back(n);
  for (auto& [n, v] : removed.items())
    if (std::find(names.begin(), names.end(), n) == names.end() && n != "exact_duplicate" && n != "near_duplicate")
      names.push_back(n);
  for (const char* n : {"exact_duplicate", "near_duplicate"})
    if (removed.contains(n)) names.push_back(n);
  return names;
}

std::vector<std::string> languages(const json& rep) {
  std::vector<std::string> langs;
  for (const char* key : {"languages_read", "kept"})
    if (rep.contains(key) && rep[key].is_object())
      for (auto& [l, v] : rep[key].items())
        if (l != "total" && std::find(langs.begin(), langs.end(), l) == langs.end()) langs.push_back(l);
  return langs;
}

void one_report(const DataReport& d, size_t index, Section* s) {
  const json& rep = d.report;
  const json removed = rep.contains("removed") && rep["removed"].is_object() ? rep["removed"] : json::object();
  const double read = num(rep, {"documents", "read"}), kept = num(rep, {"documents", "kept"});
  s->html += "<h3>" + xml_escape(d.name) + "</h3>\n<p class=\"note\"><code>" + xml_escape(d.path) + "</code></p>\n";

  // Each bar stacked by language: what is left of each language after the step.
  const std::vector<std::string> langs = languages(rep);
  BarChart funnel{"Documents through data prepare, by language", "documents", {}, langs};
  std::vector<double> left_by_lang;
  for (const std::string& l : langs) left_by_lang.push_back(num(rep, {"languages_read", l.c_str(), "docs"}));
  funnel.bars.push_back({"read", read, "", "#555555", left_by_lang});
  double left = read;
  for (const std::string& r : reasons(removed)) {
    double n = num(removed, {r.c_str(), "total", "docs"});
    if (!std::isfinite(n)) continue;
    left -= n;
    for (size_t k = 0; k < langs.size(); k++) {
      double nl = num(removed, {r.c_str(), langs[k].c_str(), "docs"});
      if (std::isfinite(nl)) left_by_lang[k] -= nl;
    }
    bool dedup = r == "exact_duplicate" || r == "near_duplicate";
    funnel.bars.push_back({"− " + r, left, "−" + thousands(n) + " (" + percent(n, read) + ")",
                           dedup ? "#e8a33d" : "#8da9c4", left_by_lang});
  }
  std::vector<double> kept_by_lang;
  for (const std::string& l : langs) kept_by_lang.push_back(num(rep, {"kept", l.c_str(), "docs"}));
  funnel.bars.push_back({"kept", kept, percent(kept, read), "#2e7d32", kept_by_lang});
  if (std::isfinite(read) && std::isfinite(kept) && std::fabs(left - kept) > 0.5)
    s->html += "<p class=\"problem\">the removals do not add up: read − removed = " + thousands(left) +
               ", kept = " + thousands(kept) + "</p>\n";
  s->add_plot("data_funnel" + (index ? "_" + std::to_string(index + 1) : ""), bar_chart_svg(funnel));

  // Per language: read, kept, and what each step removed.
  const std::vector<std::string> rs = reasons(removed);
  std::string h =
      "<table class=\"data\"><tr><th>language</th><th>read docs</th><th>read MB</th><th>kept docs</th><th>kept "
      "MB</th><th>kept</th>";
  for (const std::string& r : rs) h += "<th>− " + xml_escape(r) + "</th>";
  h += "</tr>\n";
  std::vector<std::string> rows = langs;
  rows.push_back("total");
  for (const std::string& l : rows) {
    double rd = num(rep, {"languages_read", l.c_str(), "docs"}), kd = num(rep, {"kept", l.c_str(), "docs"});
    h += "<tr><td>" + xml_escape(l) + "</td><td>" + thousands(rd) + "</td><td>" +
         cell_number(num(rep, {"languages_read", l.c_str(), "bytes"}) / 1e6) + "</td><td>" + thousands(kd) +
         "</td><td>" + cell_number(num(rep, {"kept", l.c_str(), "bytes"}) / 1e6) + "</td><td>" + percent(kd, rd) +
         "</td>";
    for (const std::string& r : rs) h += "<td>" + thousands(num(removed, {r.c_str(), l.c_str(), "docs"})) + "</td>";
    h += "</tr>\n";
  }
  s->html += h + "</table>\n";

  // Reader problems (bad lines, bad encodings) as the report lists them.
  if (rep.contains("read") && rep["read"].is_object()) {
    const json& rd = rep["read"];
    std::string counts;
    for (const char* k :
         {"invalid_utf8", "bad_json", "missing_field", "too_long", "empty", "damaged_files", "unreadable_files"})
      if (num(rd, {k}) > 0) counts += (counts.empty() ? "" : ", ") + std::string(k) + " " + thousands(num(rd, {k}));
    if (!counts.empty()) {
      s->html += "<details><summary>reader problems: " + xml_escape(counts) + "</summary><ul>\n";
      if (rd.contains("messages") && rd["messages"].is_array())
        for (const json& m : rd["messages"])
          if (m.is_string()) s->html += "<li><code>" + xml_escape(m.get<std::string>()) + "</code></li>\n";
      s->html += "</ul></details>\n";
    }
  }
}

}  // namespace

void data_section(const std::vector<DataReport>& data, Section* s) {
  if (data.empty()) return;
  s->html += "<section id=\"data\"><h2>Data</h2>\n";
  for (size_t i = 0; i < data.size(); i++) one_report(data[i], i, s);
  s->html += "</section>\n";
}

void select_section(const std::vector<SelectReport>& selects, Section* s) {
  if (selects.empty()) return;
  s->html += "<section id=\"selection\"><h2>Instruction-data selection</h2>\n";
  for (size_t i = 0; i < selects.size(); i++) {
    const SelectReport& r = selects[i];
    s->html += "<h3>" + xml_escape(r.name) + "</h3>\n<p class=\"note\"><code>" + xml_escape(r.path) + "</code></p>\n";
    if (!r.summary.empty()) {
      s->html += "<table class=\"summary\">";
      for (auto& [k, v] : r.summary.items())
        s->html += "<tr><th>" + xml_escape(k) + "</th><td>" +
                   xml_escape(v.is_string()   ? v.get<std::string>()
                              : v.is_number() ? cell_number(v.get<double>())
                                              : v.dump()) +
                   "</td></tr>";
      s->html += "</table>\n";
    }
    for (size_t k = 0; k < r.histograms.size(); k++) {
      const SelectHistogram& h = r.histograms[k];
      Histogram g{h.name, "score", h.edges, {h.counts}, {"all"}};
      if (!h.kept.empty()) g.counts.push_back(h.kept), g.labels.push_back("kept");
      s->add_plot("select" + (i ? std::to_string(i + 1) : "") + "_" + std::to_string(k + 1), histogram_svg(g));
    }
  }
  s->html += "</section>\n";
}

}  // namespace mindllm::report
