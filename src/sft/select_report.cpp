#include "sft/select_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

using json = nlohmann::json;

namespace mindllm::sft {

namespace {

double quantile(const std::vector<double>& sorted, double q) {  // linear interpolation (numpy's default)
  const double pos = q * (double)(sorted.size() - 1);
  const size_t i = (size_t)pos;
  return i + 1 < sorted.size() ? sorted[i] + (pos - (double)i) * (sorted[i + 1] - sorted[i]) : sorted[i];
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

std::string fmt(double v, const char* f = "%.4g") {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

struct Group {
  std::vector<double> pool, kept;
  int64_t pool_tokens = 0, kept_tokens = 0;
};

json group_json(const Group& g, double lo, double hi, int bins) {
  std::vector<int64_t> hp(bins, 0), hk(bins, 0);
  auto bin = [&](double s) {
    int b = hi > lo ? (int)((s - lo) / (hi - lo) * bins) : 0;
    return std::clamp(b, 0, bins - 1);
  };
  for (double s : g.pool) hp[bin(s)]++;
  for (double s : g.kept) hk[bin(s)]++;
  return {{"pool", (int64_t)g.pool.size()},
          {"kept", (int64_t)g.kept.size()},
          {"pool_tokens", g.pool_tokens},
          {"kept_tokens", g.kept_tokens},
          {"pool_stats", score_stats(g.pool)},
          {"kept_stats", score_stats(g.kept)},
          {"histogram", {{"pool", hp}, {"kept", hk}}}};
}

// An SVG histogram: the pool's counts in grey, the kept ones in blue over them.
std::string svg_histogram(const json& g, const std::vector<double>& edges) {
  const auto& hp = g["histogram"]["pool"];
  const auto& hk = g["histogram"]["kept"];
  const int bins = (int)hp.size(), W = 480, H = 140, pad = 20;
  int64_t top = 1;
  for (const auto& v : hp) top = std::max<int64_t>(top, v.get<int64_t>());
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(W) + "\" height=\"" +
                  std::to_string(H + 2 * pad) + "\">";
  const double bw = (double)(W - 2 * pad) / bins;
  for (int b = 0; b < bins; b++) {
    for (int k = 0; k < 2; k++) {
      const int64_t v = (k == 0 ? hp : hk)[b].get<int64_t>();
      if (v == 0) continue;
      const double h = (double)H * v / top, x = pad + b * bw;
      s += "<rect x=\"" + fmt(x, "%.1f") + "\" y=\"" + fmt(pad + H - h, "%.1f") + "\" width=\"" + fmt(bw - 1, "%.1f") +
           "\" height=\"" + fmt(h, "%.1f") + "\" fill=\"" + (k == 0 ? "#c8c8c8" : "#2b6cb0") + "\"><title>" +
           (k == 0 ? "pool " : "kept ") + std::to_string(v) + " in [" + fmt(edges[b]) + ", " + fmt(edges[b + 1]) +
           ")</title></rect>";
    }
  }
  s += "<line x1=\"" + std::to_string(pad) + "\" y1=\"" + std::to_string(pad + H) + "\" x2=\"" +
       std::to_string(W - pad) + "\" y2=\"" + std::to_string(pad + H) + "\" stroke=\"#333\"/>";
  s += "<text x=\"" + std::to_string(pad) + "\" y=\"" + std::to_string(H + 2 * pad - 4) + "\" font-size=\"11\">" +
       fmt(edges.front()) + "</text><text x=\"" + std::to_string(W - pad) + "\" y=\"" +
       std::to_string(H + 2 * pad - 4) + "\" font-size=\"11\" text-anchor=\"end\">" + fmt(edges.back()) + "</text>";
  s += "<text x=\"" + std::to_string(W - pad) + "\" y=\"14\" font-size=\"11\" text-anchor=\"end\">max bin " +
       std::to_string(top) + "</text></svg>";
  return s;
}

}  // namespace

json score_stats(std::vector<double> v) {
  if (v.empty())
    return {{"count", 0},     {"mean", nullptr},   {"sd", nullptr},  {"min", nullptr},
            {"p25", nullptr}, {"median", nullptr}, {"p75", nullptr}, {"max", nullptr}};
  std::sort(v.begin(), v.end());
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  mean /= (double)v.size();
  for (double x : v) var += (x - mean) * (x - mean);
  return {{"count", (int64_t)v.size()},
          {"mean", mean},
          {"sd", std::sqrt(var / (double)v.size())},
          {"min", v.front()},
          {"p25", quantile(v, 0.25)},
          {"median", quantile(v, 0.5)},
          {"p75", quantile(v, 0.75)},
          {"max", v.back()}};
}

json pick_report(const std::vector<ScoreRecord>& recs, const PickResult& res, const json& settings, const json& counts,
                 int bins) {
  std::vector<char> kept(recs.size(), 0);
  for (size_t i : res.kept) kept[i] = 1;
  Group all;
  std::map<std::string, Group> by_source, by_lang, by_tag;
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < recs.size(); i++) {
    const ScoreRecord& r = recs[i];
    lo = std::min(lo, r.score), hi = std::max(hi, r.score);
    std::vector<Group*> gs = {&all, &by_source[r.source], &by_lang[r.lang]};
    if (r.tags.empty()) gs.push_back(&by_tag["(untagged)"]);
    for (const std::string& t : r.tags) gs.push_back(&by_tag[t]);
    for (Group* g : gs) {
      g->pool.push_back(r.score);
      g->pool_tokens += r.seq_tokens;
      if (kept[i]) g->kept.push_back(r.score), g->kept_tokens += r.seq_tokens;
    }
  }
  if (recs.empty()) lo = hi = 0;
  std::vector<double> edges;
  for (int b = 0; b <= bins; b++) edges.push_back(lo + (hi - lo) * b / bins);
  json report = {{"settings", settings},     {"counts", counts},
                 {"eligible", res.eligible}, {"refused_near_duplicates", res.refused},
                 {"histogram_edges", edges}, {"all", group_json(all, lo, hi, bins)}};
  json quotas = json::array();
  for (const Quota& q : res.quotas) quotas.push_back({{"name", q.name}, {"wanted", q.wanted}, {"got", q.got}});
  report["quotas"] = quotas;
  for (auto [name, groups] : {std::pair{"by_source", &by_source}, {"by_lang", &by_lang}, {"by_tag", &by_tag}}) {
    json j = json::object();
    for (auto& [k, g] : *groups) j[k] = group_json(g, lo, hi, bins);
    report[name] = j;
  }
  return report;
}

std::string pick_report_html(const json& r) {
  const std::vector<double> edges = r["histogram_edges"].get<std::vector<double>>();
  std::string h =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>mindllm select pick report</title>"
      "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{"
      "text-align:left}.hist{display:inline-block;margin:0 1em 1em 0;vertical-align:top}</style></head><body>\n";
  h += "<h1>mindllm select pick</h1>\n<p>Score histograms: the pool in grey, what was kept in blue.</p>\n";
  h += "<h2>Settings</h2><pre>" + html_escape(r["settings"].dump(2)) + "</pre>\n";
  h += "<h2>Counts</h2><pre>" + html_escape(r["counts"].dump(2)) + "</pre>\n";
  h += "<p>eligible under the strategy: " + std::to_string(r["eligible"].get<int64_t>()) +
       "; candidates refused as near duplicates: " + std::to_string(r["refused_near_duplicates"].get<int64_t>()) +
       "</p>\n";
  h += "<h2>Quotas</h2><table><tr><th>quota</th><th>wanted</th><th>got</th></tr>";
  for (const json& q : r["quotas"])
    h += "<tr><td>" + html_escape(q["name"].get<std::string>()) + "</td><td>" + fmt(q["wanted"].get<double>(), "%.0f") +
         "</td><td>" + fmt(q["got"].get<double>(), "%.0f") + "</td></tr>";
  h += "</table>\n";
  auto table = [&](const std::string& title, const json& groups) {
    h += "<h2>" + title +
         "</h2><table><tr><th></th><th>pool</th><th>kept</th><th>pool tokens</th><th>kept tokens</th>"
         "<th>pool mean</th><th>pool median</th><th>kept mean</th><th>kept min</th><th>kept max</th></tr>";
    auto num = [](const json& v) { return v.is_null() ? std::string("-") : fmt(v.get<double>()); };
    for (auto it = groups.begin(); it != groups.end(); ++it) {
      const json& g = it.value();
      h += "<tr><td>" + html_escape(it.key()) + "</td><td>" + std::to_string(g["pool"].get<int64_t>()) + "</td><td>" +
           std::to_string(g["kept"].get<int64_t>()) + "</td><td>" + std::to_string(g["pool_tokens"].get<int64_t>()) +
           "</td><td>" + std::to_string(g["kept_tokens"].get<int64_t>()) + "</td><td>" + num(g["pool_stats"]["mean"]) +
           "</td><td>" + num(g["pool_stats"]["median"]) + "</td><td>" + num(g["kept_stats"]["mean"]) + "</td><td>" +
           num(g["kept_stats"]["min"]) + "</td><td>" + num(g["kept_stats"]["max"]) + "</td></tr>";
    }
    h += "</table>\n";
    for (auto it = groups.begin(); it != groups.end(); ++it)
      h += "<div class=\"hist\"><div>" + html_escape(it.key()) + "</div>" + svg_histogram(it.value(), edges) + "</div>";
    h += "\n";
  };
  table("All", json{{"all", r["all"]}});
  table("By source", r["by_source"]);
  table("By language", r["by_lang"]);
  table("By tag", r["by_tag"]);
  return h + "</body></html>\n";
}

}  // namespace mindllm::sft
