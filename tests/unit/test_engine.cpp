// The inference engine (paged K/V cache, forks, batches of independent sequences) and the
// generator give the logits and tokens of Model::forward on the full sequence: gpt2, gpt_neo
// (global + local layers), llama (GQA, partial rotary, GeGLU, biases, DeepNorm), every parameter
// random so no zero hides a missing term.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/cpu/linear_bf16.h"
#include "model/config.h"
#include "model/engine.h"
#include "model/kv_cache.h"
#include "serve/generator.h"
#include "model/model.h"
#include "model/quant_weights.h"

#include "model_test_util.h"

using namespace mindllm;

namespace {

Model random_model(const nlohmann::json& j, uint64_t seed) { return test::random_model(j, seed, 0.15f); }

std::vector<float> full_logits(Model& m, const std::vector<int32_t>& toks) {
  m.forward(toks.data(), nullptr, 1, (int)toks.size());
  const size_t V = m.config().vocab_size;
  return std::vector<float>(m.logits(), m.logits() + toks.size() * V);
}

double max_diff(const float* a, const float* b, size_t n) {
  double d = 0;
  for (size_t i = 0; i < n; i++) d = std::max(d, (double)std::fabs(a[i] - b[i]));
  return d;
}

std::vector<nlohmann::json> configs() {
  nlohmann::json gpt2 = {{"model_type", "gpt2"},
                         {"vocab_size", 97},
                         {"n_embd", 32},
                         {"n_layer", 2},
                         {"n_head", 4},
                         {"n_positions", 64},
                         {"activation_function", "gelu_new"}};
  nlohmann::json neo = {{"model_type", "gpt_neo"},
                        {"vocab_size", 97},
                        {"hidden_size", 32},
                        {"num_layers", 2},
                        {"num_heads", 4},
                        {"intermediate_size", 64},
                        {"max_position_embeddings", 64},
                        {"window_size", 5},
                        {"attention_types", {{{"global", "local"}, 1}}},
                        {"activation_function", "gelu_new"},
                        {"tie_word_embeddings", false}};
  nlohmann::json llama = {{"model_type", "llama"},       {"vocab_size", 97},
                          {"hidden_size", 32},           {"num_hidden_layers", 2},
                          {"num_attention_heads", 4},    {"num_key_value_heads", 2},
                          {"intermediate_size", 48},     {"max_position_embeddings", 64},
                          {"hidden_act", "silu"},        {"rms_norm_eps", 1e-5},
                          {"tie_word_embeddings", false}};
  nlohmann::json deep = llama;
  deep["mindllm_deepnorm"] = true;
  deep["hidden_act"] = "gelu_pytorch_tanh";
  deep["mindllm_partial_rotary_factor"] = 0.5;
  deep["attention_bias"] = true;
  deep["num_key_value_heads"] = 1;
  return {gpt2, neo, llama, deep};
}

class Inference : public ::testing::TestWithParam<int> {};

// Logits of the last row of one chunk appended to `seq`.
std::vector<float> step(Engine& e, KvCache& c, int seq, std::span<const int32_t> toks, int from = -1) {
  std::vector<float> logits;
  const BatchEntry b{seq, toks, from};
  e.forward(c, std::span(&b, 1), logits);
  return logits;
}

TEST_P(Inference, CacheAndForksMatchFullForward) {
  Model m = random_model(configs()[GetParam()], 7 + GetParam());
  const size_t V = m.config().vocab_size;
  Rng rng(99);
  std::vector<int32_t> prefix;
  for (int i = 0; i < 13; i++) prefix.push_back((int32_t)(rng.uniform() * V) % V);
  std::vector<std::vector<int32_t>> conts = {{5, 9, 11}, {3}, {5, 9, 12, 40, 41, 42, 43, 44, 45, 46}};

  Engine e(m);
  KvCache cache(m.config(), /*block_size=*/4);  // 13 tokens: a partly filled last block
  const int s = cache.create();
  step(e, cache, s, std::span<const int32_t>(prefix).first(6));
  auto last = step(e, cache, s, std::span<const int32_t>(prefix).subspan(6));
  auto ref_prefix = full_logits(m, prefix);
  EXPECT_LT(max_diff(last.data(), ref_prefix.data() + (prefix.size() - 1) * V, V), 2e-4);

  // Three forks of the prefix continued in one batch, logits from row 0, 0 and 4.
  const int64_t blocks_before = cache.blocks_in_use();
  std::vector<BatchEntry> batch;
  const int from[] = {0, 0, 4};
  for (size_t b = 0; b < conts.size(); b++) batch.push_back(BatchEntry{cache.fork(s), conts[b], from[b]});
  std::vector<float> logits;
  e.forward(cache, batch, logits);
  size_t row = 0;
  for (size_t b = 0; b < conts.size(); b++) {
    std::vector<int32_t> whole = prefix;
    whole.insert(whole.end(), conts[b].begin(), conts[b].end());
    auto ref = full_logits(m, whole);
    EXPECT_EQ(cache.tokens(batch[b].seq), whole);
    for (size_t t = from[b]; t < conts[b].size(); t++, row++)
      EXPECT_LT(max_diff(logits.data() + row * V, ref.data() + (prefix.size() + t) * V, V), 2e-4)
          << "branch " << b << " row " << t;
  }
  EXPECT_EQ(row * V, logits.size());
  EXPECT_EQ(cache.tokens(s), prefix);  // forks leave the prefix alone (copy on write)
  for (auto& b : batch) cache.release(b.seq);
  EXPECT_EQ(cache.blocks_in_use(), blocks_before);

  // Truncate to 9 tokens, then decode token by token.
  std::vector<int32_t> other(prefix.begin(), prefix.begin() + 9);
  cache.truncate(s, 9);
  for (int32_t t : {1, 2, 7, 8, 9, 10, 11}) {
    other.push_back(t);
    last = step(e, cache, s, std::span<const int32_t>(&other.back(), 1));
    auto ref = full_logits(m, other);
    EXPECT_LT(max_diff(last.data(), ref.data() + (other.size() - 1) * V, V), 2e-4) << "decode at " << other.size();
  }
}

// Eight prompts of different lengths in one batch (prefills, then one decode token each per
// step) give each prompt's logits and greedy tokens alone.
TEST_P(Inference, BatchOfEightEqualsEachAlone) {
  Model m = random_model(configs()[GetParam()], 11 + GetParam());
  const int V = m.config().vocab_size;
  Rng rng(5);
  std::vector<GenerationRequest> reqs(8);
  for (int r = 0; r < 8; r++) {
    for (int i = 0; i < 1 + 3 * r; i++) reqs[r].prompt.push_back((int32_t)(rng.uniform() * V) % V);
    reqs[r].max_new_tokens = 6 + r % 3;
    reqs[r].sampling.temperature = 0.0f;
  }
  Engine e(m);
  // Logits: the batched prefill against each prompt alone.
  KvCache together(m.config(), 8), alone(m.config(), 8);
  std::vector<BatchEntry> batch;
  for (auto& q : reqs) batch.push_back(BatchEntry{together.create(), q.prompt});
  std::vector<float> logits;
  e.forward(together, batch, logits);
  for (int r = 0; r < 8; r++) {
    auto one = step(e, alone, alone.create(), reqs[r].prompt);
    EXPECT_LT(max_diff(logits.data() + (size_t)r * V, one.data(), V), 1e-5) << "prompt " << r;
  }
  // Tokens: greedy generation of all eight at once against each alone.
  KvCache cache(m.config());
  auto all = generate(e, cache, reqs);
  for (int r = 0; r < 8; r++) {
    auto solo = generate(e, cache, std::span(&reqs[r], 1));
    EXPECT_EQ(all[r].tokens, solo[0].tokens) << "prompt " << r;
    EXPECT_EQ(all[r].tokens.size(), (size_t)reqs[r].max_new_tokens);
  }
  EXPECT_EQ(cache.live_sequences(), 0);
}

// Greedy generation with the cache = the argmax of a full forward over the whole context, token
// for token (what `generate` did before it had a cache).
TEST_P(Inference, GreedyWithCacheEqualsWithout) {
  Model m = random_model(configs()[GetParam()], 3 + GetParam());
  const int V = m.config().vocab_size;
  GenerationRequest q;
  q.prompt = {4, 8, 15, 16, 23, 42};
  q.max_new_tokens = 20;
  q.sampling.temperature = 0.0f;
  Engine e(m);
  KvCache cache(m.config());
  auto got = generate(e, cache, std::span(&q, 1))[0].tokens;
  std::vector<int32_t> ctx = q.prompt, want;
  for (int i = 0; i < q.max_new_tokens; i++) {
    auto lg = full_logits(m, ctx);
    const float* row = lg.data() + (ctx.size() - 1) * V;
    int32_t next = (int32_t)(std::max_element(row, row + V) - row);
    want.push_back(next);
    ctx.push_back(next);
  }
  EXPECT_EQ(got, want);
}

// A sequence's logits are the same bits whether it runs alone (prompt in one chunk, then one
// token per step: `mindllm generate`) or batched as the server runs it (prompt in chunks next to
// another sequence's prompt chunks, decode tokens next to prefill rows), on fp32 weights and on
// q8_0 / q4_0 with the bf16 K/V cache: every op computes a row on its own.
TEST_P(Inference, BatchingNeverChangesABit) {
  Model m = random_model(configs()[GetParam()], 21 + GetParam());
  const int V = m.config().vocab_size;
  std::vector<int32_t> prompt, decode = {7, 70, 3, 33, 96}, other;
  for (int i = 0; i < 13; i++) prompt.push_back((i * 31 + 2) % V);
  for (int i = 0; i < 40; i++) other.push_back((i * 17 + 5) % V);
  for (int q = 0; q < 3; q++) {
    if (q > 0) m.set_quantized(quantize_weights(m, q == 1 ? cpu::QuantType::q8_0 : cpu::QuantType::q4_0));
    SCOPED_TRACE(q == 0 ? "f32" : q == 1 ? "q8_0" : "q4_0");
    Engine e(m);
    EXPECT_EQ(e.kv_type(), q == 0 ? KvType::f32 : KvType::bf16);
    std::vector<std::vector<float>> alone;
    {
      KvCache c(m.config(), 4, 0, e.kv_type());
      const int s = c.create();
      alone.push_back(step(e, c, s, prompt));
      for (const int32_t& t : decode) alone.push_back(step(e, c, s, std::span(&t, 1)));
    }
    KvCache c(m.config(), 4, 0, e.kv_type());
    const int s = c.create(), o = c.create();
    std::vector<float> logits;
    auto run = [&](std::vector<BatchEntry> batch) { e.forward(c, batch, logits); };
    const std::span<const int32_t> p(prompt), ot(other);
    run({BatchEntry{s, p.first(5)}, BatchEntry{o, ot.first(7)}});
    run({BatchEntry{o, ot.subspan(7, 1)}, BatchEntry{s, p.subspan(5)}});  // s's logits: entry 1
    EXPECT_EQ(std::memcmp(logits.data() + V, alone[0].data(), sizeof(float) * V), 0) << "prompt";
    for (size_t k = 0; k < decode.size(); k++) {
      run({BatchEntry{o, ot.subspan(8 + 3 * k, 3)}, BatchEntry{s, std::span(&decode[k], 1)}});
      EXPECT_EQ(std::memcmp(logits.data() + V, alone[k + 1].data(), sizeof(float) * V), 0) << "decode step " << k;
    }
  }
}

// --precision bf16 for evaluation and generation: the engine's linear layers run in the model's
// matmul precision, like Model::forward's. The two paths round slightly different fp32
// activations to bf16 (a rare element lands on the other side of a rounding boundary), so they
// agree to bf16 precision, not to the bit; fp32 stays far from both at the bf16 scale.
TEST_P(Inference, Bf16EngineFollowsBf16Forward) {
  std::string why;
  if (!cpu::bf16_gemm_available(&why)) GTEST_SKIP() << why;
  Model m = random_model(configs()[GetParam()], 7 + GetParam());
  const size_t V = m.config().vocab_size;
  std::vector<int32_t> toks = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26};
  std::vector<float> fp32, bf16;
  {
    Engine e(m);
    KvCache c(m.config());
    fp32 = step(e, c, c.create(), toks);
  }
  m.set_matmul_precision(Precision::bf16);
  Engine e(m);
  KvCache c(m.config());
  bf16 = step(e, c, c.create(), toks);
  auto ref = full_logits(m, toks);
  const float* ref_last = ref.data() + (toks.size() - 1) * V;
  double scale = max_diff(ref_last, std::vector<float>(V, 0.0f).data(), V);
  EXPECT_LT(max_diff(bf16.data(), ref_last, V), 1e-2 * scale);
  EXPECT_GT(max_diff(fp32.data(), ref_last, V), 1e-4 * scale) << "bf16 had no effect";
  int same = 0;
  for (size_t i = 0; i < V; i++) same += std::fabs(bf16[i] - ref_last[i]) <= 1e-5 * scale;
  EXPECT_GT(same, (int)(0.5 * V)) << "most logits should agree to fp32 rounding";
}

std::string family_name(const ::testing::TestParamInfo<int>& info) {
  static const char* names[] = {"gpt2", "gpt_neo_local", "llama_gqa", "llama_deepnorm"};
  return names[info.param];
}

INSTANTIATE_TEST_SUITE_P(Families, Inference, ::testing::Values(0, 1, 2, 3), family_name);

TEST(Inference, BadInputChangesNothing) {
  Model m = random_model(configs()[0], 1);  // gpt2: 64 learned positions
  Engine e(m);
  KvCache c(m.config());
  const int s = c.create();
  std::vector<int32_t> t(65, 1);
  EXPECT_THROW(step(e, c, s, t), Error);
  std::vector<int32_t> bad = {1, 2, 97};
  EXPECT_THROW(step(e, c, s, bad), Error);
  EXPECT_EQ(c.length(s), 0);
  GenerationRequest q;
  q.prompt = {1, 2, 200};
  EXPECT_THROW(generate(e, c, std::span(&q, 1)), Error);
  EXPECT_EQ(c.live_sequences(), 1);
}

// --kv-cache q8_0 (int8 blocks of 32 per head): on a GQA llama and a GPT-Neo with a local layer
// (head size 32), a prompt and decode steps give logits close to the fp32 cache's, of the order of
// the bf16 cache's difference; batching still changes no bit; a head size that is not a multiple
// of 32 is bad input. (The kernel against float64 on the cache's values: the ops table.)
TEST(Inference, Q8KvCache) {
  nlohmann::json llama = configs()[2], neo = configs()[1];
  llama["hidden_size"] = 128, llama["intermediate_size"] = 96;  // 4 heads of 32, 2 kv heads
  neo["hidden_size"] = 64, neo["num_heads"] = 2;                // 2 heads of 32, window 5
  for (const nlohmann::json& j : {llama, neo}) {
    Model m = random_model(j, 5);
    SCOPED_TRACE(j["model_type"].get<std::string>());
    const int V = m.config().vocab_size;
    Engine e(m);
    std::vector<int32_t> toks;
    for (int i = 0; i < 20; i++) toks.push_back((i * 29 + 4) % V);
    std::vector<std::vector<float>> by_type;
    for (KvType t : {KvType::f32, KvType::bf16, KvType::q8_0}) {
      KvCache c(m.config(), 4, 0, t);
      const int s = c.create();
      std::vector<float> all = step(e, c, s, std::span(toks).first(12), 0);
      for (int i = 12; i < 20; i++) {
        const std::vector<float> lg = step(e, c, s, std::span(toks).subspan(i, 1));
        all.insert(all.end(), lg.begin(), lg.end());
      }
      by_type.push_back(all);
    }
    const size_t n = by_type[0].size();
    double scale = 0;
    for (float x : by_type[0]) scale = std::max(scale, (double)std::fabs(x));
    const double e_bf16 = max_diff(by_type[1].data(), by_type[0].data(), n) / scale,
                 e_q8 = max_diff(by_type[2].data(), by_type[0].data(), n) / scale;
    // Measured 2026-12-07 (max |logit difference| over the largest logit): llama bf16 0.0061,
    // q8_0 0.024; GPT-Neo (no 1/sqrt(d) on the scores: peaky softmax) bf16 0.033, q8_0 0.063.
    // q8_0 rounds to 1/254 of its block's largest value, bf16 to 1/512 of each value.
    EXPECT_GT(e_q8, 0.0);  // the cache really is quantised
    EXPECT_LT(e_q8, 0.1);
    EXPECT_LT(e_q8, 5 * e_bf16);
    if (std::getenv("MINDLLM_TEST_VERBOSE")) std::printf("  bf16 %.3g q8_0 %.3g\n", e_bf16, e_q8);

    // Batching: the sequence alone equals it next to another's prompt, bit for bit.
    KvCache alone(m.config(), 4, 0, KvType::q8_0), both(m.config(), 4, 0, KvType::q8_0);
    const int a = alone.create(), s = both.create(), o = both.create();
    const std::vector<float> want = step(e, alone, a, toks);
    std::vector<float> logits;
    const std::vector<BatchEntry> first = {BatchEntry{o, std::span(toks).first(9)},
                                           BatchEntry{s, std::span(toks).first(7)}};
    e.forward(both, first, logits);
    const std::vector<BatchEntry> second = {BatchEntry{s, std::span(toks).subspan(7)},
                                            BatchEntry{o, std::span(toks).subspan(9, 2)}};
    e.forward(both, second, logits);
    EXPECT_EQ(std::memcmp(logits.data(), want.data(), sizeof(float) * V), 0);
  }
  Model small = random_model(configs()[0], 1);  // gpt2, head size 8
  try {
    KvCache c(small.config(), 4, 0, KvType::q8_0);
    ADD_FAILURE() << "a q8_0 cache for head size 8";
  } catch (const Error& err) {
    EXPECT_EQ(err.code, ExitCode::bad_input);
    EXPECT_NE(std::string(err.what()).find("multiple of 32"), std::string::npos) << err.what();
  }
}

// Host caches pad rows whose bytes are a multiple of 1 KiB by one 32-value block (KvCache::row_stride:
// off the 4 KiB page offsets decode would otherwise keep hitting); the engine reads the padded rows
// right: a llama with 512-wide K/V rows (f32: 2 KiB, bf16: 1 KiB; q8_0's 544 bytes stay unpadded)
// gives the full forward's logits for a prompt and decode steps.
TEST(KvCache, PaddedRowsGiveTheFullForward) {
  nlohmann::json j = configs()[2];
  j["hidden_size"] = 512, j["num_attention_heads"] = 8, j["num_key_value_heads"] = 8, j["num_hidden_layers"] = 1;
  Model m = random_model(j, 3);
  const size_t V = m.config().vocab_size;
  EXPECT_EQ(KvCache(m.config(), 4, 0, KvType::f32).row_stride(), 544);
  EXPECT_EQ(KvCache(m.config(), 4, 0, KvType::bf16).row_stride(), 544);
  EXPECT_EQ(KvCache(m.config(), 4, 0, KvType::q8_0).row_stride(), 512);
  EXPECT_EQ(KvCache::host_row_stride(KvType::bf16, 128), 128);  // Qwen2-0.5B: 256-byte rows
  Engine e(m);
  KvCache c(m.config(), 4);
  const int s = c.create();
  std::vector<int32_t> toks = {3, 14, 15, 92, 65, 35, 89, 79, 32};
  step(e, c, s, std::span(toks).first(6));
  for (size_t t = 6; t < toks.size(); t++) {
    const std::vector<float> lg = step(e, c, s, std::span(toks).subspan(t, 1));
    const std::vector<int32_t> prefix(toks.begin(), toks.begin() + t + 1);
    const std::vector<float> ref = full_logits(m, prefix);
    EXPECT_LT(max_diff(lg.data(), ref.data() + t * V, V), 2e-4) << "decode at " << t;
  }
}

TEST(KvCache, ForkSharesBlocksAndCopiesOnWrite) {
  Model m = random_model(configs()[2], 1);
  Engine e(m);
  KvCache c(m.config(), 4, /*max_positions=*/16);
  const int a = c.create();
  std::vector<int32_t> toks = {1, 2, 3, 4, 5, 6};
  step(e, c, a, toks);
  EXPECT_EQ(c.blocks_in_use(), 2);
  const int b = c.fork(a);
  EXPECT_EQ(c.blocks_in_use(), 2);  // shared
  const int32_t t7 = 7;
  step(e, c, b, std::span(&t7, 1));
  EXPECT_EQ(c.blocks_in_use(), 3);  // b's partial last block copied before the write
  EXPECT_EQ(c.block_table(a)[0], c.block_table(b)[0]);
  EXPECT_NE(c.block_table(a)[1], c.block_table(b)[1]);
  c.release(b);
  EXPECT_EQ(c.blocks_in_use(), 2);
  std::vector<int32_t> many(11, 3);  // 6 + 11 > 16 positions
  EXPECT_THROW(step(e, c, a, many), Error);
}

// The prefix cache keeps a released sequence's full blocks, keyed by the whole prefix; a new
// sequence built from them continues with the logits of a fresh computation; cached blocks are
// copied on write, evicted least recently used (the chain's tail first) when the budget is reached,
// and never while a sequence holds them.
TEST(KvCache, PrefixCacheReusesFinishedBlocksAndEvictsUnderPressure) {
  Model m = random_model(configs()[2], 1);
  Engine e(m);
  KvCache c(m.config(), 4, /*max_positions=*/24);  // 6 blocks
  c.enable_prefix_cache();
  std::vector<int32_t> p = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  const std::vector<int32_t> more = {11, 12};
  std::vector<int32_t> whole = p;
  whole.insert(whole.end(), more.begin(), more.end());
  const std::vector<float> full = full_logits(m, whole);
  const size_t V = m.config().vocab_size;

  const int a = c.create();
  step(e, c, a, p);
  c.release(a);
  EXPECT_EQ(c.cached_blocks(), 2);  // [1..4] and [5..8]; the partial third block is freed
  EXPECT_EQ(c.blocks_in_use(), 2);
  EXPECT_EQ(c.cached_prefix(whole), 8);
  std::vector<int32_t> other = whole;
  other[5] = 50;
  EXPECT_EQ(c.cached_prefix(other), 4);  // the second block's tokens differ
  other[0] = 50;
  EXPECT_EQ(c.cached_prefix(other), 0);  // a block matches only after the same prefix
  EXPECT_EQ(c.cached_prefix(std::span<const int32_t>(whole).first(7)), 4);

  // From 8 cached positions, and from 7 (inside a cached block: copied before the write). The
  // logits are those of the same computation without the cache, bit for bit.
  for (int len : {8, 7}) {
    const int b = c.create_from_prefix(whole, len);
    EXPECT_EQ(c.tokens(b), std::vector<int32_t>(whole.begin(), whole.begin() + len));
    const std::vector<float> got = step(e, c, b, std::span<const int32_t>(whole).subspan(len));
    KvCache plain(m.config(), 4);
    const int r = plain.create();
    step(e, plain, r, p);
    plain.truncate(r, len);
    EXPECT_EQ(got, step(e, plain, r, std::span<const int32_t>(whole).subspan(len))) << len;
    EXPECT_LT(max_diff(got.data(), full.data() + (whole.size() - 1) * V, V), 2e-4);
    c.release(b);
  }
  EXPECT_EQ(c.cached_blocks(), 3);  // the len-8 sequence added [9..12]

  // A held chain is not evicted: 2 blocks held + 5 new > 6.
  const int held = c.create_from_prefix(whole, 8);
  const int big = c.create();
  EXPECT_THROW(step(e, c, big, std::vector<int32_t>(20, 3)), Error);
  EXPECT_EQ(c.cached_prefix(whole), 8);
  // Under pressure, the least recently used go first: [9..12] (cached before `held` touched the
  // other two), then, once `held` is gone, the chain's tail before its head.
  step(e, c, big, std::vector<int32_t>(16, 3));  // 2 held + 4 = 6 blocks
  EXPECT_EQ(c.cached_prefix(whole), 8);
  EXPECT_EQ(c.cached_blocks(), 2);
  c.release(held);
  c.truncate(big, 0);
  const int x = c.create();
  step(e, c, x, std::vector<int32_t>(17, 4));  // 5 blocks: the 4 free ones and one evicted
  EXPECT_EQ(c.cached_prefix(whole), 4);
}

// Stop strings, stop tokens, the streamed text and cancellation, over a made-up detokenizer in
// which token 10 + k is the k-th byte of "héllo wörld STOP end" (multi-byte characters split
// across tokens).
TEST(Generator, StreamsFinalTextAndStops) {
  Model m = random_model(configs()[2], 2);
  Engine e(m);
  KvCache cache(m.config());
  const std::string text = "h\xc3\xa9llo w\xc3\xb6rld STOP end";
  // Force the generated sequence: logits are random, so use a model-independent check instead:
  // run generation and map whatever tokens come out onto bytes by id.
  TokenText tt = [&](int32_t id) { return std::string(1, text[id % text.size()]); };
  GenerationRequest q;
  q.prompt = {1, 2, 3};
  q.max_new_tokens = 40;
  q.sampling.temperature = 0.0f;
  auto plain = generate(e, cache, std::span(&q, 1), tt)[0];
  std::string all;
  for (int32_t id : plain.tokens) all += tt(id);
  EXPECT_EQ(plain.text, all);
  EXPECT_EQ(plain.finish, FinishReason::length);
  ASSERT_GE(all.size(), 4u);
  // Stop at a string that occurs in the output: the text is cut before it, the stream never shows it.
  q.stop_strings = {all.substr(all.size() / 2, 2)};
  const size_t cut = all.find(q.stop_strings[0]);
  std::string streamed;
  int calls = 0;
  auto res = generate(e, cache, std::span(&q, 1), tt, [&](int r, int32_t, std::string_view d) {
    EXPECT_EQ(r, 0);
    streamed += d;
    calls++;
    return true;
  })[0];
  EXPECT_EQ(res.finish, FinishReason::stop);
  EXPECT_EQ(res.text, all.substr(0, cut));
  EXPECT_EQ(streamed, res.text);
  EXPECT_EQ(calls, (int)res.tokens.size());
  // A stop token ends generation and is not part of the output.
  q.stop_strings.clear();
  q.stop_tokens = {plain.tokens[3]};
  res = generate(e, cache, std::span(&q, 1), tt)[0];
  EXPECT_EQ(res.finish, FinishReason::stop);
  EXPECT_EQ(std::vector<int32_t>(plain.tokens.begin(), plain.tokens.begin() + res.tokens.size()), res.tokens);
  EXPECT_LE(res.tokens.size(), 3u);
  // Cancellation after two tokens.
  q.stop_tokens.clear();
  int n = 0;
  res = generate(e, cache, std::span(&q, 1), tt, [&](int, int32_t, std::string_view) { return ++n < 2; })[0];
  EXPECT_EQ(res.finish, FinishReason::cancelled);
  EXPECT_EQ(res.tokens.size(), 2u);
  EXPECT_EQ(cache.live_sequences(), 0);
}

// Streamed text holds back an incomplete UTF-8 character until its last byte arrives.
TEST(Generator, StreamHoldsIncompleteUtf8) {
  Model m = random_model(configs()[2], 2);
  Engine e(m);
  KvCache cache(m.config());
  GenerationRequest q;
  q.prompt = {1};
  q.max_new_tokens = 12;
  q.sampling.temperature = 0.0f;
  // Every token is one byte of "é" (0xC3 0xA9) alternately: complete characters only when pairs end.
  int k = 0;
  TokenText tt = [&](int32_t) { return std::string(1, (k++ % 2) ? '\xa9' : '\xc3'); };
  std::vector<std::string> deltas;
  generate(e, cache, std::span(&q, 1), tt, [&](int, int32_t, std::string_view d) {
    deltas.emplace_back(d);
    return true;
  });
  ASSERT_EQ(deltas.size(), 12u);
  for (size_t i = 0; i < deltas.size(); i++) EXPECT_EQ(deltas[i], i % 2 ? "\xc3\xa9" : "") << i;
}

}  // namespace
