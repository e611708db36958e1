// mindllm report: runs, evaluation results and data reports -> one self-contained HTML page with
// plots (index.html) and a PNG of each plot; --watch redraws while a run goes on.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "cli/command.h"
#include "cli/output.h"
#include "cli/validate.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/interrupt.h"
#include "report/inputs.h"
#include "report/page.h"
#include "report/png.h"
#include "report/samples.h"

namespace mindllm::cli {

namespace fs = std::filesystem;
using namespace mindllm::report;

namespace {

struct ReportArgs {
  std::vector<std::string> inputs;
  std::string out = "report";
  double smooth = 0.9;
  SampleOptions samples;
  bool watch = false;
  double interval = 5;
  OutputFlags output;  // --quiet, --json
};

struct Written {
  std::string html;
  size_t plots = 0, pngs = 0;
  Inputs inputs;
  std::vector<std::string> problems;
};

// Samples per checkpoint, kept across --watch redraws (a checkpoint does not change once written).
using SampleCache = std::map<std::string, std::vector<Sample>>;

Written render(const ReportArgs& a, SampleCache& cache) {
  Written w;
  w.inputs = read_inputs(a.inputs);
  if (!w.inputs.usable() && !a.watch) {
    std::string why;
    for (const std::string& p : w.inputs.problems) why += (why.empty() ? "" : "; ") + p;
    bad_input("nothing to report: " + why);
  }
  std::vector<Sample> samples;
  for (const RunMetrics& r : w.inputs.runs) {
    if (a.samples.count <= 0) break;
    auto it = cache.find(r.final_checkpoint);
    if (it == cache.end() || r.final_checkpoint.empty())
      it = cache.insert_or_assign(r.final_checkpoint, generate_samples(r, a.samples)).first;
    for (Sample s : it->second) {
      s.run = r.name;
      samples.push_back(std::move(s));
    }
  }
  PageOptions po;
  po.smooth = a.smooth;
  po.png_links = png_available();
  if (a.watch) po.refresh_seconds = std::max(2, static_cast<int>(a.interval + 0.5));
  if (!png_available())
    po.notes.push_back("no PNGs: this mindllm was built without librsvg (install librsvg2-dev and rebuild)");
  Page page = build_page(w.inputs, samples, po);
  fs::create_directories(a.out);
  if (png_available())
    for (const Plot& p : page.plots) write_svg_png(p.svg, (fs::path(a.out) / (p.id + ".png")).string()), w.pngs++;
  w.html = (fs::path(a.out) / "index.html").string();
  write_file_atomic(w.html, page.html);  // last: the page never links a PNG not yet written
  w.plots = page.plots.size();
  w.problems = std::move(page.problems);
  return w;
}

// The problems go to stderr too, each once (--watch redraws often).
void summarize(const ReportArgs& a, const Written& w, const char* verb, std::vector<std::string>* warned) {
  if (!a.output.quiet)
    for (const std::string& p : w.problems)
      if (std::find(warned->begin(), warned->end(), p) == warned->end()) {
        std::fprintf(stderr, "report: warning: %s\n", p.c_str());
        warned->push_back(p);
      }
  const Inputs& in = w.inputs;
  char text[1024];
  std::snprintf(
      text, sizeof text,
      "report: %s %s: %zu run(s), %zu evaluation(s), %zu data report(s), %zu selection report(s); %zu plot(s), %zu "
      "PNG(s)%s%s",
      verb, w.html.c_str(), in.runs.size(), in.evals.size(), in.data.size(), in.selects.size(), w.plots, w.pngs,
      png_available() ? "" : " (built without librsvg: HTML only)",
      w.problems.empty() ? "" : ("; " + std::to_string(w.problems.size()) + " problem(s) stated on the page").c_str());
  print_summary(a.output, "report", text,
                {{"out", w.html},
                 {"runs", in.runs.size()},
                 {"evaluations", in.evals.size()},
                 {"data_reports", in.data.size()},
                 {"selection_reports", in.selects.size()},
                 {"plots", w.plots},
                 {"pngs", w.pngs},
                 {"problems", w.problems}});
}

// What --watch compares between polls: each watched file's modification time and size.
std::vector<std::pair<long long, long long>> file_state(const std::vector<std::string>& files) {
  std::vector<std::pair<long long, long long>> s;
  for (const std::string& f : files) {
    std::error_code ec, ec2;
    auto t = fs::last_write_time(f, ec);
    auto n = fs::file_size(f, ec2);
    s.emplace_back(ec ? -1 : static_cast<long long>(t.time_since_epoch().count()),
                   ec2 ? -1 : static_cast<long long>(n));
  }
  return s;
}

int run_report(int argc, char** argv) {
  CLI::App app{
      "Write an HTML report (index.html + a PNG per plot) of training runs, evaluation results and data reports.",
      "mindllm report"};
  ReportArgs a;
  app.add_option(
         "inputs", a.inputs,
         "run directories (metrics.jsonl, ckpt/), metrics.jsonl files, eval results.json, data prepare or select "
         "report.json (or directories holding them)")
      ->required();
  app.add_option("--out", a.out, "output directory (index.html, <plot>.png)")->capture_default_str();
  app.add_option("--smooth", a.smooth, "weight of the smoothed loss curve (exponential moving average; 0: none)")
      ->check(number_in(0, 1, false, true))
      ->capture_default_str();
  app.add_option("--samples", a.samples.count, "generate N samples from each run's final checkpoint")
      ->check(non_negative())
      ->capture_default_str();
  app.add_option("--sample-prompt", a.samples.prompts,
                 "prompt for the samples (repeatable; default: a few English and Chinese openings)");
  app.add_option("--sample-tokens", a.samples.max_new_tokens, "new tokens per sample")
      ->check(positive())
      ->capture_default_str();
  app.add_option("--temperature", a.samples.temperature, "sampling temperature of the samples (0: greedy)")
      ->check(non_negative())
      ->capture_default_str();
  app.add_option("--seed", a.samples.seed, "seed of the first sample (sample i uses seed + i)")->capture_default_str();
  app.add_flag("--watch", a.watch, "redraw when an input changes (polls; Ctrl-C stops)");
  app.add_option("--interval", a.interval, "seconds between --watch polls")
      ->check(number_in(0.1, 3600))
      ->capture_default_str();
  add_output_flags(app, a.output);
  int threads = 0;
  add_threads_option(app, threads);
  parse_args(app, argc, argv);
  apply_threads(threads);
  check_output_dir(a.out, "--out");

  SampleCache cache;
  std::vector<std::string> warned;
  if (!a.watch) {
    summarize(a, render(a, cache), "wrote", &warned);
    return 0;
  }
  install_interrupt_handler();
  const std::vector<std::string> files = watched_files(a.inputs);
  auto state = file_state(files);
  summarize(a, render(a, cache), "wrote", &warned);
  if (!a.output.quiet)
    std::fprintf(stderr, "report: watching %zu input(s) every %g s; Ctrl-C stops\n", a.inputs.size(), a.interval);
  while (!interrupted()) {
    auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(a.interval);
    while (!interrupted() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (interrupted()) break;
    auto now = file_state(files);
    if (now == state) continue;
    state = now;
    summarize(a, render(a, cache), "updated", &warned);
  }
  if (!a.output.quiet) std::fprintf(stderr, "report: stopped watching\n");
  return 0;
}

}  // namespace

MINDLLM_COMMAND("report", "HTML report with plots of training runs, evaluation results and data reports", run_report);

}  // namespace mindllm::cli
