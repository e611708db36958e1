// mindllm report's library (src/report): reading damaged metrics.jsonl files, the SVG plots
// (lines break at NaN, non-finite points are marked), smoothing, the data funnel's order and
// arithmetic, evaluation deltas, select histograms, and the PNG writer.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

#include "test_tmp.h"
#include "core/file_io.h"
#include "report/inputs.h"
#include "report/page.h"
#include "report/png.h"
#include "report/svg.h"

using namespace mindllm;
using namespace mindllm::report;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) { return mindllm_test::fresh_tmp_dir("report_" + name); }

void write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

bool mentions(const std::vector<std::string>& problems, const std::string& what) {
  for (const std::string& p : problems)
    if (p.find(what) != std::string::npos) return true;
  return false;
}

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) n++;
  return n;
}

}  // namespace

TEST(Report, NiceTicksAreRoundAndCoverTheRange) {
  EXPECT_EQ(nice_ticks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  std::vector<double> f = nice_ticks(0.13, 0.91, 4), want = {0.2, 0.4, 0.6, 0.8};
  ASSERT_EQ(f.size(), want.size());
  for (size_t i = 0; i < f.size(); i++) EXPECT_NEAR(f[i], want[i], 1e-12);
  std::vector<double> t = nice_ticks(3, 3);  // one value: a range around it
  ASSERT_GE(t.size(), 2u);
  EXPECT_LE(t.front(), 3);
  EXPECT_GE(t.back(), 3);
  EXPECT_EQ(short_number(125000), "125k");
  EXPECT_EQ(short_number(2.5e6), "2.5M");
  EXPECT_EQ(short_number(0.0002), "0.0002");
  EXPECT_EQ(thousands(1234567), "1,234,567");
  EXPECT_EQ(xml_escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
}

TEST(Report, MetricsTruncatedLastLineIsLeftOutAndNamed) {
  fs::path d = fresh_dir("trunc");
  write(d / "metrics.jsonl",
        "{\"step\":1,\"loss\":5.0,\"lr\":0.001,\"grad_norm\":2.0,\"tokens_per_s\":100,\"step_time_s\":2}\n"
        "{\"step\":2,\"loss\":4.5,\"lr\":0.001,\"grad_norm\":1.5,\"tokens_per_s\":100,\"step_time_s\":2,\"val_loss\":4."
        "6}\n"
        "{\"step\":3,\"loss\":4.");
  std::vector<std::string> problems;
  RunMetrics r = read_metrics((d / "metrics.jsonl").string(), &problems);
  EXPECT_EQ(r.step, (std::vector<double>{1, 2}));
  EXPECT_EQ(r.tokens, (std::vector<double>{200, 400}));  // tokens_per_s x step_time_s, summed
  EXPECT_TRUE(std::isnan(r.val_loss[0]));
  EXPECT_EQ(r.val_loss[1], 4.6);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("line 3 is cut off"), std::string::npos) << problems[0];
}

TEST(Report, MetricsNonFiniteLossesReadAsGapsAndAreCounted) {
  fs::path d = fresh_dir("nan");
  // null is how nlohmann::json (the trainer) writes NaN; Python's json writes NaN / Infinity bare.
  write(d / "metrics.jsonl",
        "{\"step\":1,\"loss\":5.0}\n{\"step\":2,\"loss\":null,\"skipped\":true}\n{\"step\":3,\"loss\":NaN}\n"
        "{\"step\":4,\"loss\":Infinity}\nnot json\n{\"step\":5,\"loss\":\"x\\\"NaN\"}\n{\"step\":6,\"loss\":3.0}\n");
  std::vector<std::string> problems;
  RunMetrics r = read_metrics((d / "metrics.jsonl").string(), &problems);
  ASSERT_EQ(r.step.size(), 6u);
  EXPECT_EQ(r.loss[0], 5.0);
  EXPECT_TRUE(std::isnan(r.loss[1]) && std::isnan(r.loss[2]) && std::isnan(r.loss[4]));
  EXPECT_TRUE(std::isinf(r.loss[3]));
  EXPECT_EQ(r.non_finite_losses, 4);
  EXPECT_EQ(r.skipped_steps, 1);
  EXPECT_TRUE(mentions(problems, "4 step(s) without a finite loss")) << problems[0];
  EXPECT_TRUE(mentions(problems, "first: line 5"));
}

TEST(Report, EmptyAndMissingInputsBecomeProblemsNotErrors) {
  fs::path d = fresh_dir("empty");
  write(d / "run" / "metrics.jsonl", "");
  fs::create_directories(d / "nothing");
  Inputs in = read_inputs({(d / "run").string(), (d / "missing").string(), (d / "nothing").string()});
  EXPECT_EQ(in.runs.size(), 1u);
  EXPECT_TRUE(in.usable());
  EXPECT_TRUE(mentions(in.problems, "empty: the run has logged no step yet"));
  EXPECT_TRUE(mentions(in.problems, "missing: no such file or directory"));
  EXPECT_TRUE(mentions(in.problems, "no metrics.jsonl, results.json or report.json"));
  Page page = build_page(in, {}, {});
  EXPECT_NE(page.html.find("class=\"problems\""), std::string::npos);
  EXPECT_NE(page.html.find("no such file or directory"), std::string::npos);
  EXPECT_NE(page.html.find("no data"), std::string::npos);  // the loss plot of an empty run
  EXPECT_FALSE(read_inputs({(d / "missing").string()}).usable());
}

TEST(Report, LinePlotBreaksAtNonFiniteValuesAndMarksThem) {
  LinePlot p{"Loss", "step", "loss", {}, false};
  Line l{"run", {1, 2, 3, 4, 5}, {5, 4, NAN, 3, 2.5}, "#000"};
  l.mark_non_finite = true;
  p.lines.push_back(l);
  std::string svg = line_plot_svg(p);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, std::regex("class=\"series\" d=\"([^\"]*)\"")));
  std::string d = m[1];
  EXPECT_EQ(count(d, "M"), 2) << d;  // two pieces: steps 1-2 and 4-5
  EXPECT_EQ(count(d, "L"), 2) << d;
  EXPECT_EQ(count(svg, "class=\"non-finite\""), 1);
  EXPECT_EQ(svg.find("NaN"), std::string::npos);          // no NaN coordinates
  EXPECT_NE(svg.find(">run</text>"), std::string::npos);  // legend
  LinePlot empty{"Loss", "step", "loss", {}, false};
  EXPECT_NE(line_plot_svg(empty).find("no data"), std::string::npos);
}

TEST(Report, SmoothingIsDebiasedAndSkipsNonFinite) {
  std::vector<double> s = smooth_ema({2, 2, NAN, 2}, 0.9);
  EXPECT_DOUBLE_EQ(s[0], 2);  // bias correction: no pull towards 0
  EXPECT_DOUBLE_EQ(s[3], 2);
  EXPECT_TRUE(std::isnan(s[2]));
  std::vector<double> t = smooth_ema({0, 10}, 0.5);
  EXPECT_NEAR(t[1], (0.5 * 0.5 * 0 + 0.5 * 10) / (1 - 0.25), 1e-12);
}

TEST(Report, DataFunnelFollowsThePipelineAndAddsUp) {
  fs::path d = fresh_dir("data");
  nlohmann::json rep = {
      {"documents", {{"read", 100}, {"kept", 70}, {"removed", 30}}},
      {"languages_read", {{"zh", {{"docs", 40}, {"bytes", 4000}}}, {"en", {{"docs", 60}, {"bytes", 9000}}}}},
      {"kept", {{"zh", {{"docs", 30}, {"bytes", 3000}}}, {"en", {{"docs", 40}, {"bytes", 6000}}}}},
      {"removed",
       {{"near_duplicate", {{"zh", {{"docs", 5}}}, {"en", {{"docs", 5}}}, {"total", {{"docs", 10}}}}},
        {"length", {{"zh", {{"docs", 5}}}, {"en", {{"docs", 10}}}, {"total", {{"docs", 15}}}}},
        {"exact_duplicate", {{"zh", {{"docs", 0}}}, {"en", {{"docs", 5}}}, {"total", {{"docs", 5}}}}}}}};
  write(d / "report.json", rep.dump());
  Inputs in = read_inputs({d.string()});
  ASSERT_EQ(in.data.size(), 1u);
  Page page = build_page(in, {}, {});
  ASSERT_EQ(page.plots.size(), 1u);
  const std::string& svg = page.plots[0].svg;
  // read 100 -> length 85 -> exact 80 -> near 70 -> kept 70, in that order
  size_t a = svg.find(">read<"), b = svg.find("− length"), c = svg.find("− exact_duplicate"),
         e = svg.find("− near_duplicate"), k = svg.find(">kept<");
  ASSERT_TRUE(a < b && b < c && c < e && e < k) << svg;
  EXPECT_NE(svg.find(">85  −15 (15.0%)<"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">70  70.0%<"), std::string::npos);
  EXPECT_EQ(page.html.find("do not add up"), std::string::npos);
  EXPECT_NE(page.html.find("<td>75.0%</td>"), std::string::npos);  // zh kept 30 of 40
}

TEST(Report, EvaluationDeltasAreSignedAndColouredByDirection) {
  fs::path d = fresh_dir("eval");
  auto results = [](double acc, double ppl) {
    return nlohmann::json{{"results",
                           {{"mmlu", {{"alias", "mmlu"}, {"acc,none", acc}, {"acc_stderr,none", 0.01}}},
                            {"perplexity", {{"word_perplexity,none", ppl}}}}},
                          {"groups", {{"mmlu", nlohmann::json::object()}}},
                          {"higher_is_better", {{"perplexity", {{"word_perplexity", false}}}}}};
  };
  write(d / "a" / "results.json", results(0.25, 30).dump());
  write(d / "b" / "results.json", results(0.5, 20).dump());
  Inputs in = read_inputs({(d / "a").string(), (d / "b" / "results.json").string()});
  ASSERT_EQ(in.evals.size(), 2u);
  std::string html = build_page(in, {}, {}).html;
  EXPECT_NE(html.find("<td class=\"better\">+0.2500</td>"), std::string::npos) << html;
  EXPECT_NE(html.find("<td class=\"better\">-10.0000</td>"), std::string::npos);  // lower perplexity is better
  EXPECT_NE(html.find("± 0.0100"), std::string::npos);
}

TEST(Report, SelectScoresAreBinned) {
  fs::path d = fresh_dir("select");
  write(d / "report.json", R"({"kind": "select", "kept": 3, "scores": {"entropy": [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]},
        "histograms": [{"name": "bad", "edges": [0, 1], "counts": [1, 2]}]})");
  Inputs in = read_inputs({(d / "report.json").string()});
  ASSERT_EQ(in.selects.size(), 1u);
  ASSERT_EQ(in.selects[0].histograms.size(), 1u);
  const SelectHistogram& h = in.selects[0].histograms[0];
  EXPECT_EQ(h.edges.size(), 31u);
  double n = 0;
  for (double c : h.counts) n += c;
  EXPECT_EQ(n, 10);
  EXPECT_EQ(h.counts.back(), 1);  // the maximum lands in the last bin
  EXPECT_TRUE(mentions(in.problems, "histogram 'bad'"));
  EXPECT_EQ(build_page(in, {}, {}).plots.size(), 1u);
}

TEST(Report, PngOfAPlotIsAPng) {
  if (!png_available()) GTEST_SKIP() << "built without librsvg";
  fs::path d = fresh_dir("png");
  LinePlot p{"Loss", "step", "loss", {{"run", {1, 2, 3}, {3, 2, 1}, "#4e79a7"}}, false};
  write_svg_png(line_plot_svg(p, 400, 300), (d / "p.png").string(), 1.0);
  std::string png = read_file((d / "p.png").string());
  ASSERT_GT(png.size(), 200u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  // IHDR: width and height big-endian at bytes 16..23
  auto be32 = [&](size_t o) {
    return (uint32_t)(uint8_t)png[o] << 24 | (uint32_t)(uint8_t)png[o + 1] << 16 | (uint32_t)(uint8_t)png[o + 2] << 8 |
           (uint8_t)png[o + 3];
  };
  EXPECT_EQ(be32(16), 400u);
  EXPECT_EQ(be32(20), 300u);
}
