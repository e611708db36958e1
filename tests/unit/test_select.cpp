// mindllm select: the pick strategies on a synthetic pool give exactly the expected samples; tag
// rules; the report's counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "sft/select_pick.h"
#include "sft/select_report.h"
#include "sft/select_tags.h"

using namespace mindllm;
using namespace mindllm::sft;

namespace {

// 100 samples; sample i has score (37 i mod 100) / 10, so its rank in score order is 37 i mod 100.
std::vector<ScoreRecord> pool100() {
  std::vector<ScoreRecord> v;
  for (int i = 0; i < 100; i++) {
    ScoreRecord r;
    r.id = "s" + std::to_string(i);
    r.source = i < 60 ? "a.jsonl" : "b.jsonl";
    r.lang = i % 2 ? "en" : "zh";
    r.score = (37 * i % 100) / 10.0;
    r.seq_tokens = 10;
    if (i % 10 == 0) r.tags = {"math"};
    v.push_back(r);
  }
  return v;
}

int rank_of(int i) { return 37 * i % 100; }

// The samples (indices) whose rank satisfies `in`.
std::vector<size_t> where(const std::function<bool(int)>& in) {
  std::vector<size_t> out;
  for (int i = 0; i < 100; i++)
    if (in(rank_of(i))) out.push_back(i);
  return out;
}

PickOptions with(Strategy s) {
  PickOptions o;
  o.strategy = s;
  return o;
}

}  // namespace

TEST(SelectPick, PercentileBandKeepsTheMiddle) {
  auto recs = pool100();
  PickOptions o = with(Strategy::band_percentile);
  o.lo = 25, o.hi = 75;  // pct = 100 r / 99 in [25, 75]: ranks 25..74
  EXPECT_EQ(pick(recs, o).kept, where([](int r) { return r >= 25 && r <= 74; }));
  o.size = 10;  // the ten nearest the 50th percentile
  EXPECT_EQ(pick(recs, o).kept, where([](int r) { return r >= 45 && r <= 54; }));
}

TEST(SelectPick, TopBottomTargetZ) {
  auto recs = pool100();
  PickOptions o = with(Strategy::top);
  o.size = 5;
  EXPECT_EQ(pick(recs, o).kept, where([](int r) { return r >= 95; }));
  o = with(Strategy::bottom);
  o.size = 3;
  EXPECT_EQ(pick(recs, o).kept, where([](int r) { return r <= 2; }));
  o = with(Strategy::target);
  o.target = 2.04, o.size = 4;  // 2.0, 2.1, 1.9, 2.2
  EXPECT_EQ(pick(recs, o).kept, where([](int r) { return r >= 19 && r <= 22; }));
  // mean 4.95, sd 2.8866: |z| <= 0.5 is 3.507 <= score <= 6.393, ranks 36..63
  o = with(Strategy::band_z);
  o.lo = -0.5, o.hi = 0.5;
  EXPECT_EQ(pick(recs, o).kept, where([](int r) { return r >= 36 && r <= 63; }));
}

TEST(SelectPick, RandomIsSeededAndOfTheSize) {
  auto recs = pool100();
  PickOptions o = with(Strategy::random);
  o.size = 10, o.seed = 7;
  auto a = pick(recs, o).kept, b = pick(recs, o).kept;
  EXPECT_EQ(a.size(), 10u);
  EXPECT_EQ(a, b);
  o.seed = 8;
  EXPECT_NE(pick(recs, o).kept, a);
}

TEST(SelectPick, StratifiedQuotasFollowThePool) {
  auto recs = pool100();
  PickOptions o = with(Strategy::top);
  o.size = 10, o.by_source = true;  // a: 60 samples, b: 40 -> 6 and 4, each its stratum's top
  auto kept = pick(recs, o).kept;
  ASSERT_EQ(kept.size(), 10u);
  std::vector<std::pair<int, size_t>> a, b;  // (rank, index) per stratum
  for (int i = 0; i < 100; i++) (i < 60 ? a : b).push_back({rank_of(i), (size_t)i});
  std::sort(a.rbegin(), a.rend()), std::sort(b.rbegin(), b.rend());
  std::set<size_t> want;
  for (int k = 0; k < 6; k++) want.insert(a[k].second);
  for (int k = 0; k < 4; k++) want.insert(b[k].second);
  EXPECT_EQ(std::set<size_t>(kept.begin(), kept.end()), want);
  // Percentile bands are per stratum: the middle half of each source.
  o = with(Strategy::band_percentile);
  o.by_source = true;
  kept = pick(recs, o).kept;
  int in_a = 0;
  for (size_t i : kept) in_a += i < 60;
  EXPECT_EQ(in_a, 30);                 // ranks within a (60): pct = 100 r / 59 in [25, 75] -> r = 15..44
  EXPECT_EQ(kept.size() - in_a, 20u);  // within b (40): r = 10..29
}

TEST(SelectPick, TagSharesAreFilledFirst) {
  auto recs = pool100();
  PickOptions o = with(Strategy::bottom);
  o.size = 10, o.tag_shares = {{"math", 0.5}};
  auto res = pick(recs, o);
  ASSERT_EQ(res.kept.size(), 10u);
  int math = 0;
  for (size_t i : res.kept) math += i % 10 == 0;
  // The math samples (i = 0, 10, ..., 90) have ranks 0, 70, 40, 10, 80, 50, 20, 90, 60, 30: the 5
  // lowest are 0, 10, 20, 30, 40; the other 5 are the lowest ranks of all not yet kept: 1..5.
  EXPECT_EQ(math, 5);
  EXPECT_EQ(res.kept, where([](int r) { return r <= 5 || r == 10 || r == 20 || r == 30 || r == 40; }));
  ASSERT_EQ(res.quotas.size(), 2u);
  EXPECT_EQ(res.quotas[0].name, "tag:math");
  EXPECT_EQ(res.quotas[0].got, 5);
}

TEST(SelectPick, TagSharesNeverOverfillTheSize) {
  auto recs = pool100();
  PickOptions o = with(Strategy::bottom);
  o.size = 10, o.by_source = true, o.by_lang = true, o.tag_shares = {{"math", 0.6}};
  // Strata a|en, a|zh, b|en, b|zh (30, 30, 20, 20 samples): shares 3, 3, 2, 2. The 6 lowest math
  // samples (all zh: i = 0, 20, 30, 50 in a, 60, 90 in b) take 4 from a|zh, past its share of 3, so
  // the 4 left are divided 3 : 2 over a|en and b|en (2.4, 1.6 -> 2 and 2), not 3 and 2 (11 in all).
  auto res = pick(recs, o);
  EXPECT_EQ(res.kept.size(), 10u);
  int a_en = 0, b_en = 0;
  for (size_t i : res.kept) (i < 60 ? a_en : b_en) += i % 2;
  EXPECT_EQ(a_en, 2);
  EXPECT_EQ(b_en, 2);
}

TEST(SelectPick, TokenBudgetAndRefusals) {
  auto recs = pool100();
  PickOptions o = with(Strategy::top);
  o.token_budget = 55;  // 10 tokens each: 5 samples
  o.size = -1;
  EXPECT_EQ(pick(recs, o).kept, where([](int r) { return r >= 95; }));
  // A refused candidate (rank 99) is replaced by the next (rank 94).
  o.token_budget = -1, o.size = 5;
  auto res = pick(recs, o, [&](size_t i) { return rank_of((int)i) != 99; });
  EXPECT_EQ(res.kept, where([](int r) { return r >= 94 && r != 99; }));
  EXPECT_EQ(res.refused, 1);
}

TEST(SelectPick, FlagParsers) {
  EXPECT_EQ(parse_band("25:75", "--band", 0, 100), std::make_pair(25.0, 75.0));
  for (const char* bad : {"75:25", "25", "a:b", "-1:50", "nan:5", "10:101"})
    EXPECT_THROW(parse_band(bad, "--band", 0, 100), Error) << bad;
  auto s = parse_tag_shares("math=0.3,exam=0.2");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[1].first, "exam");
  for (const char* bad : {"math", "math=0", "math=0.7,exam=0.4", "=0.2", "math=x", "math=0.1,math=0.2"})
    EXPECT_THROW(parse_tag_shares(bad), Error) << bad;
}

TEST(SelectTags, BuiltinRules) {
  TagRules rules = builtin_tag_rules();
  auto tags = [&](Conversation c) { return tag_conversation(rules, c); };
  EXPECT_EQ(tags({{"user", "Solve for x: 3x + 5 = 20"}, {"assistant", "x = 5"}}), std::vector<std::string>{"math"});
  EXPECT_EQ(tags({{"user", "下列哪个是正确的？\nA. 1\nB. 2"}, {"assistant", "答案是A"}}),
            std::vector<std::string>{"exam"});
  EXPECT_EQ(tags({{"user", "hi"}, {"assistant", "hello"}, {"user", "bye"}, {"assistant", "bye"}}),
            std::vector<std::string>{"multi_turn"});
  EXPECT_TRUE(tags({{"user", "Tell me a story."}, {"assistant", "Once upon a time."}}).empty());
  EXPECT_EQ(tags({{"user", "写一个Python函数"}, {"assistant", "```python\ndef f(): pass\n```"}}),
            std::vector<std::string>{"code"});
}

TEST(SelectTags, RuleFilesAndFields) {
  TagRules r = parse_tag_rules(R"({"poem": ["Poem", "诗"], "long": {"regex": ["\\w{12,}"], "on": "response"}})", "f");
  EXPECT_EQ(r.tags(), (std::vector<std::string>{"poem", "long"}));
  EXPECT_EQ(tag_conversation(r, {{"user", "a POEM please"}, {"assistant", "internationalization"}}),
            (std::vector<std::string>{"poem", "long"}));
  EXPECT_EQ(tag_conversation(r, {{"user", "internationalization"}, {"assistant", "ok"}}), std::vector<std::string>{});
  for (const char* bad : {"[1]", "{}", R"({"x": 3})", R"({"x": {"regex": ["("]}})", R"({"x": {"weird": 1}})",
                          R"({"a,b": ["k"]})", R"({"x": {"min_matches": -1}})", "not json"})
    EXPECT_THROW(parse_tag_rules(bad, "f"), Error) << bad;
  EXPECT_EQ(tags_from_field({{"t", "math, exam"}}, "t"), (std::vector<std::string>{"math", "exam"}));
  EXPECT_EQ(tags_from_field({{"t", {"law"}}}, "t"), std::vector<std::string>{"law"});
  EXPECT_TRUE(tags_from_field({{"x", 1}}, "t").empty());
  EXPECT_THROW(tags_from_field({{"t", 3}}, "t"), std::runtime_error);
}

TEST(SelectReport, CountsAndHistograms) {
  auto recs = pool100();
  PickOptions o = with(Strategy::top);
  o.size = 10;
  auto res = pick(recs, o);
  auto rep = pick_report(recs, res, {{"top", 10}}, {{"invalid_scores", 0}}, 10);
  EXPECT_EQ(rep["all"]["pool"], 100);
  EXPECT_EQ(rep["all"]["kept"], 10);
  EXPECT_EQ(rep["all"]["kept_tokens"], 100);
  EXPECT_EQ(rep["all"]["histogram"]["pool"], std::vector<int64_t>(10, 10));
  EXPECT_EQ(rep["all"]["histogram"]["kept"][9], 10);
  EXPECT_EQ(rep["by_tag"]["math"]["pool"], 10);
  EXPECT_DOUBLE_EQ(rep["all"]["pool_stats"]["median"].get<double>(), 4.95);
  std::string html = pick_report_html(rep);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("math"), std::string::npos);
}
