// Instruction data: the three formats, what is skipped and why, file weights, batches.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "test_tmp.h"
#include "core/error.h"
#include "sft/sft_batches.h"
#include "sft/sft_data.h"

using namespace mindllm;
using namespace mindllm::sft;
using json = nlohmann::json;

namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  auto dir = mindllm_test::test_tmp_root() / "sft";
  std::filesystem::create_directories(dir);
  std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string roles(const Conversation& c) {
  std::string s;
  for (const Message& m : c) s += m.role.substr(0, 1);
  return s;
}

}  // namespace

TEST(SftData, AlpacaWithInputSystemAndHistory) {
  Conversation c = to_conversation(json::parse(R"({"instruction": "Add", "input": "1 and 2", "output": "3",
      "system": "Be brief.", "history": [["hi", "hello"]]})"),
                                   SftFormat::auto_detect);
  ASSERT_EQ(roles(c), "suaua");
  EXPECT_EQ(c[0].content, "Be brief.");
  EXPECT_EQ(c[1].content, "hi");
  EXPECT_EQ(c[3].content, "Add\n1 and 2");
  EXPECT_EQ(c[4].content, "3");
  // No input: the instruction alone.
  EXPECT_EQ(
      to_conversation(json::parse(R"({"instruction": "Q", "input": "", "output": "A"})"), SftFormat::alpaca)[0].content,
      "Q");
}

TEST(SftData, ShareGptAndMessages) {
  Conversation s = to_conversation(json::parse(R"({"conversations": [{"from": "system", "value": "S"},
      {"from": "human", "value": "q1"}, {"from": "gpt", "value": "a1"}, {"from": "human", "value": "q2"},
      {"from": "gpt", "value": "a2"}]})"),
                                   SftFormat::auto_detect);
  EXPECT_EQ(roles(s), "suaua");
  Conversation m = to_conversation(json::parse(R"({"messages": [{"role": "user", "content": "q"},
      {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]})"),
                                   SftFormat::auto_detect);
  ASSERT_EQ(roles(m), "ua");
  EXPECT_EQ(m[1].content, "ab");
}

TEST(SftData, UnusableSamplesNameTheirReason) {
  auto reason = [](const char* text, SftFormat f = SftFormat::auto_detect) {
    try {
      to_conversation(json::parse(text), f);
      return std::string("accepted");
    } catch (const SampleError& e) { return std::string(e.what()); }
  };
  EXPECT_EQ(reason(R"({"instruction": "q"})"), "missing field 'output'");
  EXPECT_EQ(reason(R"({"instruction": 3, "output": "a"})"), "field 'instruction' is not a string");
  EXPECT_EQ(reason(R"({"instruction": "q", "output": "  "})"), "empty assistant turn");
  EXPECT_EQ(reason(R"({"conversations": [{"from": "tool", "value": "x"}]})"), "unknown role 'tool'");
  EXPECT_EQ(reason(R"({"messages": [{"role": "assistant", "content": "a"}]})"),
            "turns out of order (expected user, got assistant)");
  EXPECT_EQ(reason(R"({"messages": [{"role": "user", "content": "q"}]})"), "ends without an assistant turn");
  EXPECT_EQ(reason(R"({"text": "x"})"), "unknown sample format (no 'messages', 'conversations' or 'instruction')");
  EXPECT_EQ(reason(R"([1])"), "not a JSON object");
  EXPECT_EQ(reason(R"({"instruction": "q", "output": "a"})", SftFormat::sharegpt), "missing field 'conversations'");
}

TEST(SftData, JsonArrayAndJsonLinesSkipBadItemsAndCountThem) {
  const std::string good = R"({"instruction": "q", "output": "a"})";
  std::string array = "[" + good + ", {\"instruction\": \"q\"}, {\"instruction\": nope}, " + good + "]";
  LoadReport r;
  auto convs = load_conversations(write_temp("a.json", array), SftFormat::auto_detect, false, r);
  EXPECT_EQ(convs.size(), 2u);
  EXPECT_EQ(r.samples, 4);
  EXPECT_EQ(r.kept, 2);
  EXPECT_EQ(r.skipped["missing field 'output'"], 1);
  EXPECT_EQ(r.skipped["invalid JSON"], 1);
  ASSERT_FALSE(r.examples.empty());
  EXPECT_NE(r.examples[0].find("a.json:item 2: missing field 'output'"), std::string::npos);

  std::string lines = good + "\n\n" + "{\"instruction\": \"q\xff\", \"output\": \"a\"}\n" + good + "\n";
  LoadReport r2;
  EXPECT_EQ(load_conversations(write_temp("b.jsonl", lines), SftFormat::auto_detect, false, r2).size(), 2u);
  EXPECT_EQ(r2.samples, 3);  // the blank line is not a sample
  EXPECT_EQ(r2.skipped["invalid UTF-8"], 1);
  // --strict: the first unusable sample is an error naming it.
  LoadReport r3;
  try {
    load_conversations(write_temp("b.jsonl", lines), SftFormat::auto_detect, true, r3);
    FAIL() << "strict accepted a bad sample";
  } catch (const Error& e) {
    EXPECT_EQ(e.code, ExitCode::bad_input);
    EXPECT_NE(std::string(e.what()).find("b.jsonl:line 3: invalid UTF-8"), std::string::npos);
  }
}

TEST(SftData, SourcesWithWeights) {
  auto s = parse_sft_sources("a.json,dir/b.jsonl:0.5,c:d.json");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].path, "a.json");
  EXPECT_EQ(s[0].weight, 1.0);
  EXPECT_EQ(s[1].path, "dir/b.jsonl");
  EXPECT_EQ(s[1].weight, 0.5);
  EXPECT_EQ(s[2].path, "c:d.json");  // not a number after the colon: part of the name
  EXPECT_THROW(parse_sft_sources("a.json:0"), Error);
  EXPECT_THROW(parse_sft_sources("a.json:-1"), Error);
  EXPECT_THROW(parse_sft_sources("a.json,,b"), Error);
}

TEST(SftBatches, PadsToTheLongestAndMasksUntrainedTargets) {
  TokenizedSample a{{1, 2, 3, 4}, {0, 0, 1, 1}}, b{{5, 6}, {0, 1}};
  Batch batch;
  fill_batch({&a, &b}, &batch);
  ASSERT_EQ(batch.B, 2);
  ASSERT_EQ(batch.T, 3);
  EXPECT_EQ(batch.inputs, (std::vector<int32_t>{1, 2, 3, 5, 0, 0}));
  EXPECT_EQ(batch.targets, (std::vector<int32_t>{-1, 3, 4, 6, -1, -1}));
  EXPECT_EQ(batch.count_targets(), 3);
}

TEST(SftBatches, OrderDependsOnlyOnSeedAndStepAndVisitsEverySampleOncePerEpoch) {
  std::vector<TokenizedSample> samples;
  for (int i = 0; i < 10; i++) samples.push_back({{i, i + 100}, {0, 1}});
  SftBatches x(samples, {}, 7, 2, 1, 1), y(samples, {}, 7, 2, 1, 1);
  std::vector<int> seen;
  Batch b;
  for (int step = 0; step < 5; step++) {
    x.train_batch(step, 0, &b);
    for (int r = 0; r < b.B; r++) seen.push_back(b.inputs[r * b.T]);
  }
  std::vector<int> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  // A fresh source asked for step 3 first (a resumed run) gives the same rows.
  Batch c;
  y.train_batch(3, 0, &c);
  x.train_batch(3, 0, &b);
  EXPECT_EQ(b.inputs, c.inputs);
  EXPECT_NE(seen, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));  // shuffled
}

// A sample of n tokens (ids i*10 .. i*10 + n - 1, all trained) for the packing tests.
static TokenizedSample sample_of(int i, int n) {
  TokenizedSample s;
  for (int k = 0; k < n; k++) s.ids.push_back(i * 10 + k), s.trained.push_back(k > 0);
  return s;
}

TEST(SftPacking, FirstFitInDataOrder) {
  // positions needed: 5, 3, 7, 2, 4 in windows of 8 -> {0, 1} (8), {2} (7) ... the 2 fits window 1,
  // the 4 needs a new window.
  std::vector<TokenizedSample> s = {sample_of(0, 6), sample_of(1, 4), sample_of(2, 8), sample_of(3, 3),
                                    sample_of(4, 5)};
  std::vector<Window> w = pack_first_fit(s, {0, 1, 2, 3, 4}, 8);
  EXPECT_EQ(w, (std::vector<Window>{{0, 1}, {2}, {3, 4}}));
  EXPECT_EQ(window_length(s, w[0]), 8);
  // Another order: the same rule.
  EXPECT_EQ(pack_first_fit(s, {4, 3, 2, 1, 0}, 8), (std::vector<Window>{{4, 3}, {2}, {1, 0}}));
  EXPECT_TRUE(pack_first_fit(s, {}, 8).empty());
}

TEST(SftPacking, WindowsHavePositionsPerSampleAndNoTargetAcrossSamples) {
  std::vector<TokenizedSample> s = {sample_of(1, 3), sample_of(2, 4), sample_of(3, 2)};
  s[1].trained[1] = 0;  // a prompt token of sample 1
  Window a{0, 1}, b{2};
  Batch batch;
  fill_packed_batch(s, {&a, &b}, &batch);
  ASSERT_EQ(batch.B, 2);
  ASSERT_EQ(batch.T, 5);  // the longer window: 2 + 3 positions
  EXPECT_EQ(batch.inputs, (std::vector<int32_t>{10, 11, 20, 21, 22, 30, 0, 0, 0, 0}));
  EXPECT_EQ(batch.targets, (std::vector<int32_t>{11, 12, -1, 22, 23, 31, -1, -1, -1, -1}));
  EXPECT_EQ(batch.positions, (std::vector<int32_t>{0, 1, 0, 1, 2, 0, 0, 1, 2, 3}));  // the tail: its own segment
  // An unpacked batch has no position ids.
  fill_batch({&s[0]}, &batch);
  EXPECT_TRUE(batch.positions.empty());
  EXPECT_EQ(batch.position_ids(), nullptr);
}

TEST(SftPacking, BatchesDependOnlyOnSeedAndStepAcrossEpochs) {
  std::vector<TokenizedSample> samples;
  for (int i = 0; i < 9; i++) samples.push_back(sample_of(i, 2 + i % 4));
  SftBatches x(samples, {}, 7, 1, 1, 1, true, 8), y(samples, {}, 7, 1, 1, 1, true, 8);
  // Every sample once per epoch: the samples' first tokens over the first epoch's windows (one a step).
  Batch b;
  std::vector<int> firsts;
  int step = 0;
  for (; firsts.size() < samples.size(); step++) {
    x.train_batch(step, 0, &b);
    for (size_t i = 0; i < b.inputs.size(); i++)
      if (b.positions[i] == 0 && b.targets[i] >= 0) firsts.push_back(b.inputs[i] / 10);
  }
  std::sort(firsts.begin(), firsts.end());
  EXPECT_EQ(firsts.size(), samples.size());
  EXPECT_EQ(firsts, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(x.position(step)["epoch"], 1);
  EXPECT_EQ(x.position(step)["window_in_epoch"], 0);
  // A fresh source asked for a later step first (a resumed run) gives the same rows.
  Batch c;
  y.train_batch(11, 0, &c);
  x.train_batch(11, 0, &b);
  EXPECT_EQ(b.inputs, c.inputs);
  EXPECT_EQ(b.positions, c.positions);
  EXPECT_EQ(x.position(11), y.position(11));
  EXPECT_EQ(x.position(11)["sampler"], "sft-packed");
}

TEST(SftPacking, AMicroBatchAcrossTheEpochEndHasTheRowsOfBothEpochs) {
  // 9 samples pack into fewer than 8 windows of 8, so rows 0..7 of a micro-batch of 8 run past
  // the first epoch's windows into the next (which re-packs the source's windows: the rows taken
  // before must stay valid; they dangled before 2026-12-07, and sft --packing crashed). Each row
  // equals that window fetched alone (one row a step).
  std::vector<TokenizedSample> samples;
  for (int i = 0; i < 9; i++) samples.push_back(sample_of(i, 2 + i % 4));
  SftBatches wide(samples, {}, 7, 8, 1, 1, true, 8), narrow(samples, {}, 7, 1, 1, 1, true, 8);
  EXPECT_GE(narrow.position(7)["epoch"].get<int>(), 1);  // the last row is in a later epoch than the first
  Batch b, one;
  wide.train_batch(0, 0, &b);
  const size_t T = b.inputs.size() / 8;
  auto row = [&](const std::vector<int32_t>& v, int r, size_t n) {
    return std::vector<int32_t>(v.begin() + r * T, v.begin() + r * T + n);
  };
  for (int r = 0; r < 8; r++) {
    narrow.train_batch(r, 0, &one);  // one row, as long as its window's used positions
    const size_t n = one.inputs.size();
    ASSERT_LE(n, T) << r;
    EXPECT_EQ(row(b.inputs, r, n), one.inputs) << r;
    EXPECT_EQ(row(b.targets, r, n), one.targets) << r;
    EXPECT_EQ(row(b.positions, r, n), one.positions) << r;
    for (size_t t = n; t < T; t++) EXPECT_LT(b.targets[r * T + t], 0) << r;  // the rest is padding
  }
}
