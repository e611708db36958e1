#include "report/page.h"

#include <cmath>
#include <cstdio>

#include "report/svg.h"

namespace mindllm::report {

namespace {

constexpr const char* kStyle = R"css(
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 1.5em auto; max-width: 1180px; color: #222; padding: 0 1em; box-sizing: border-box; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
nav a { margin-right: 1em; }
figure { display: inline-block; width: calc(50% - 1.2em); min-width: 460px; margin: 0.5em 0.5em 0.5em 0; vertical-align: top; }
figure svg { width: 100%; height: auto; }
table.runs td:first-child { white-space: nowrap; }
figcaption { font-size: 0.8em; color: #666; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.88em; display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f4f4f4; }
td.task, td:first-child { text-align: left; }
.stderr { color: #888; font-size: 0.9em; }
.better { color: #1a7f37; font-weight: bold; }
.worse { color: #c62828; font-weight: bold; }
.bad { color: #c62828; font-weight: bold; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em; border-radius: 2px; }
.problems { background: #fff4f4; border: 1px solid #e0a0a0; padding: 0.4em 1em; border-radius: 4px; }
.problems li, p.problem { color: #a01818; }
.notes { background: #f6f8fa; border: 1px solid #d0d7de; padding: 0.4em 1em; border-radius: 4px; }
.note { color: #555; font-size: 0.9em; }
.sample { border-left: 3px solid #4e79a7; padding: 0.2em 0.8em; margin: 0.6em 0; }
.sample pre { white-space: pre-wrap; margin: 0.3em 0; font-size: 0.9em; }
code { font-size: 0.92em; }
)css";

std::string list(const std::string& cls, const std::string& title, const std::vector<std::string>& lines) {
  std::string h = "<div class=\"" + cls + "\"><h2>" + title + "</h2><ul>\n";
  for (const std::string& l : lines)
    h += "<li class=\"" + cls.substr(0, cls.size() - 1) + "\">" + xml_escape(l) + "</li>\n";
  return h + "</ul></div>\n";
}

void samples_section(const std::vector<Sample>& samples, Section* s) {
  if (samples.empty()) return;
  s->html += "<section id=\"samples\"><h2>Samples</h2>\n";
  for (const Sample& x : samples) {
    s->html += "<div class=\"sample\"><div class=\"note\">" + xml_escape(x.run) + " · <code>" +
               xml_escape(x.checkpoint) + "</code></div>";
    if (!x.error.empty()) s->html += "<p class=\"problem\">" + xml_escape(x.error) + "</p>";
    else s->html += "<pre><b>" + xml_escape(x.prompt) + "</b>" + xml_escape(x.text) + "</pre>";
    s->html += "</div>\n";
  }
  s->html += "</section>\n";
}

}  // namespace

void Section::add_plot(const std::string& id, std::string svg) {
  html += "<figure id=\"plot-" + id + "\">\n" + svg;
  if (png_links) html += "<figcaption><a href=\"" + id + ".png\">" + id + ".png</a></figcaption>";
  html += "</figure>\n";
  plots.push_back({id, std::move(svg)});
}

std::string cell_number(double v, bool decimals) {
  if (!std::isfinite(v)) return std::isnan(v) ? "–" : (v > 0 ? "inf" : "-inf");
  char buf[48];
  std::snprintf(buf, sizeof buf, decimals && std::fabs(v) < 10 ? "%.4f" : "%.4g", v);
  return buf;
}

std::string thousands(double v) {
  if (!std::isfinite(v)) return "–";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.0f", std::fabs(v));
  std::string d = buf, o;
  for (size_t i = 0; i < d.size(); i++) {
    if (i > 0 && (d.size() - i) % 3 == 0) o += ',';
    o += d[i];
  }
  return (v < 0 && o != "0" ? "-" : "") + o;
}

Page build_page(const Inputs& in, const std::vector<Sample>& samples, const PageOptions& o) {
  Section body;
  body.png_links = o.png_links;
  training_section(in.runs, o.smooth, &body);
  evaluation_section(in.evals, &body);
  data_section(in.data, &body);
  select_section(in.selects, &body);
  samples_section(samples, &body);

  Page page;
  page.problems = in.problems;
  for (const Sample& x : samples)
    if (!x.error.empty()) page.problems.push_back(x.run + ": sample: " + x.error);
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<link rel=\"icon\" href=\"data:,\">\n";
  if (o.refresh_seconds > 0)
    h += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(o.refresh_seconds) + "\">\n";
  h += "<title>mindllm report</title>\n<style>" + std::string(kStyle) +
       "</style>\n</head>\n<body>\n<h1>mindllm report</h1>\n";
  h += "<p class=\"note\">" + std::to_string(in.runs.size()) + " run(s), " + std::to_string(in.evals.size()) +
       " evaluation result(s), " + std::to_string(in.data.size()) + " data report(s), " +
       std::to_string(in.selects.size()) + " selection report(s), " + std::to_string(samples.size()) + " sample(s)" +
       (o.refresh_seconds > 0
            ? "; updated while the run goes on (reloads every " + std::to_string(o.refresh_seconds) + " s)"
            : "") +
       ".</p>\n<nav>";
  for (const auto& [id, title] : {std::pair{"training", "Training"},
                                  {"evaluation", "Evaluation"},
                                  {"data", "Data"},
                                  {"selection", "Selection"},
                                  {"samples", "Samples"}})
    if (body.html.find("<section id=\"" + std::string(id) + "\"") != std::string::npos)
      h += "<a href=\"#" + std::string(id) + "\">" + title + "</a>";
  h += "</nav>\n";
  if (!page.problems.empty()) h += list("problems", "Problems", page.problems);
  if (!o.notes.empty()) h += list("notes", "Notes", o.notes);
  if (!in.usable()) h += "<p class=\"problem\">Nothing to show yet.</p>\n";
  h += body.html + "</body>\n</html>\n";
  page.html = std::move(h);
  page.plots = std::move(body.plots);
  return page;
}

}  // namespace mindllm::report
