// The server's pieces without HTTP: the continuous-batching scheduler (greedy output equals
// generate()'s however requests are batched and chunked; the queue bound; cancellation) and the
// API's request validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "model/config.h"
#include "model/engine.h"
#include "serve/api.h"
#include "serve/scheduler.h"

using namespace mindllm;

namespace {
SchedulerOptions sched_options(int parallel, int max_queue, int ctx, int prefill_chunk, bool prefix_cache = true) {
  SchedulerOptions o;
  o.parallel = parallel, o.max_queue = max_queue, o.ctx = ctx, o.prefill_chunk = prefill_chunk;
  o.prefix_cache = prefix_cache;
  return o;
}
}  // namespace

namespace {

Model small_llama() {
  Model m(config_from_json({{"model_type", "llama"},
                            {"vocab_size", 97},
                            {"hidden_size", 32},
                            {"num_hidden_layers", 2},
                            {"num_attention_heads", 4},
                            {"num_key_value_heads", 2},
                            {"intermediate_size", 48},
                            {"max_position_embeddings", 64},
                            {"hidden_act", "silu"},
                            {"rms_norm_eps", 1e-5},
                            {"tie_word_embeddings", false}},
                           "test"));
  Rng rng(3);
  for (size_t i = 0; i < m.params().size(); i++) m.params()[i] = 0.15f * rng.normal();
  return m;
}

// Runs a channel's choices to their end: the text of each and its last event.
std::pair<std::vector<std::string>, std::vector<ChoiceEvent>> drain(Channel& ch, int n) {
  std::vector<std::string> text(n);
  std::vector<ChoiceEvent> end(n);
  for (int done = 0; done < n;)
    for (ChoiceEvent& e : ch.take(std::chrono::milliseconds(100))) {
      text[e.index] += e.text;
      if (e.done) end[e.index] = e, done++;
    }
  return {text, end};
}

}  // namespace

TEST(Scheduler, GreedyEqualsGenerateWhateverTheBatching) {
  Model m = small_llama();
  Engine engine(m);
  TokenText tt = [](int32_t id) { return std::string(1, char('a' + id % 26)); };
  std::vector<GenerationRequest> reqs(7);
  for (int r = 0; r < 7; r++) {
    for (int i = 0; i < 3 + 5 * r; i++) reqs[r].prompt.push_back((r * 31 + i * 7) % 97);
    reqs[r].max_new_tokens = 6 + r;
    reqs[r].sampling.temperature = 0.0f;
    reqs[r].max_length = 64;
  }
  KvCache cache(m.config());
  std::vector<std::string> want;
  for (auto& q : reqs) want.push_back(generate(engine, cache, std::span(&q, 1), tt)[0].text);
  // 3 sequences at once, prompts prefilled 8 tokens a step: batches mix prefill chunks and decodes.
  Scheduler s(engine, tt, sched_options(3, 16, 64, 8));
  auto ch = std::make_shared<Channel>();
  std::vector<Job> jobs;
  for (int r = 0; r < 7; r++) jobs.push_back(Job{reqs[r], r, ch});
  ASSERT_TRUE(s.submit(std::move(jobs)));
  auto [text, end] = drain(*ch, 7);
  for (int r = 0; r < 7; r++) {
    EXPECT_EQ(text[r], want[r]) << r;
    EXPECT_EQ(end[r].finish, FinishReason::length);
    EXPECT_EQ(end[r].completion_tokens, reqs[r].max_new_tokens);
  }
}

// A request arriving while another with the same prompt prefix runs forks its cached blocks and
// prefills only the rest; its greedy answer is still generate()'s.
TEST(Scheduler, SharedPromptPrefixIsReused) {
  Model m = small_llama();
  Engine engine(m);
  TokenText tt = [](int32_t id) { return std::string(1, char('a' + id % 26)); };
  GenerationRequest a, b;
  for (int i = 0; i < 20; i++) a.prompt.push_back((i * 13 + 5) % 97);
  b.prompt = a.prompt;
  b.prompt.insert(b.prompt.end(), {7, 8, 9});  // shares 20 tokens (more than a 16-position block)
  for (GenerationRequest* q : {&a, &b}) q->sampling.temperature = 0.0f, q->max_length = 64;
  a.max_new_tokens = 40;
  b.max_new_tokens = 8;
  KvCache cache(m.config());
  const std::string want = generate(engine, cache, std::span(&b, 1), tt)[0].text;
  Scheduler s(engine, tt, sched_options(2, 4, 64, 512, false));  // running sequences only
  // b must arrive while a runs (a's 40 steps take milliseconds): retry if the machine was too slow.
  for (int attempt = 0; attempt < 5 && s.prefix_tokens_reused() == 0; attempt++) {
    auto cha = std::make_shared<Channel>(), chb = std::make_shared<Channel>();
    ASSERT_TRUE(s.submit({Job{a, 0, cha}}));
    std::vector<ChoiceEvent> first;  // a's first events; on a fast machine they may hold its end
    while ((first = cha->take(std::chrono::milliseconds(1000))).empty()) {}
    const bool a_done = std::any_of(first.begin(), first.end(), [](const ChoiceEvent& e) { return e.done; });
    ASSERT_TRUE(s.submit({Job{b, 0, chb}}));
    auto [text, end] = drain(*chb, 1);
    EXPECT_EQ(text[0], want);
    EXPECT_EQ(end[0].completion_tokens, 8);
    if (!a_done) drain(*cha, 1);
  }
  EXPECT_GE(s.prefix_tokens_reused(), 20);
  // Choices submitted together (n > 1): the first prefills, the others wait a step and fork it.
  const int64_t before = s.prefix_tokens_reused();
  auto ch = std::make_shared<Channel>();
  ASSERT_TRUE(s.submit({Job{b, 0, ch}, Job{b, 1, ch}}));
  auto [text, end] = drain(*ch, 2);
  EXPECT_EQ(text[0], want);
  EXPECT_EQ(text[1], want);
  EXPECT_EQ(s.prefix_tokens_reused() - before, (int64_t)b.prompt.size() - 1);
}

// A chat client's second turn resends the first turn and its answer: the prefix cache gives the
// finished first turn's blocks to it, and the answer is the same as without the cache (and
// generate()'s).
TEST(Scheduler, FinishedRequestsPrefixIsCached) {
  Model m = small_llama();
  Engine engine(m);
  TokenText tt = [](int32_t id) { return std::string(1, char('a' + id % 26)); };
  GenerationRequest turn1;
  for (int i = 0; i < 30; i++) turn1.prompt.push_back((i * 11 + 3) % 97);
  turn1.sampling.temperature = 0.0f;
  turn1.max_length = 64;
  turn1.max_new_tokens = 10;
  KvCache cache(m.config());
  const GenerationResult first = generate(engine, cache, std::span(&turn1, 1), tt)[0];
  GenerationRequest turn2 = turn1;
  turn2.prompt.insert(turn2.prompt.end(), first.tokens.begin(), first.tokens.end());
  turn2.prompt.insert(turn2.prompt.end(), {4, 5, 6});  // 43 tokens; turn 1 cached 39 of them: 2 blocks
  turn2.max_new_tokens = 8;
  const std::string want = generate(engine, cache, std::span(&turn2, 1), tt)[0].text;
  for (bool on : {true, false}) {
    Scheduler s(engine, tt, sched_options(2, 4, 64, 512, on));
    auto ch1 = std::make_shared<Channel>(), ch2 = std::make_shared<Channel>();
    ASSERT_TRUE(s.submit({Job{turn1, 0, ch1}}));
    EXPECT_EQ(drain(*ch1, 1).first[0], first.text);
    ASSERT_TRUE(s.submit({Job{turn2, 0, ch2}}));
    EXPECT_EQ(drain(*ch2, 1).first[0], want) << on;
    EXPECT_EQ(s.prefix_cache_hit_tokens(), on ? 32 : 0);
    EXPECT_EQ(s.prefix_tokens_reused(), on ? 32 : 0);
  }
}

TEST(Scheduler, QueueBoundAndCancellation) {
  Model m = small_llama();
  Engine engine(m);
  TokenText tt = [](int32_t id) { return std::string(1, char('a' + id % 26)); };
  Scheduler s(engine, tt, sched_options(1, 2, 64, 512));
  GenerationRequest q;
  q.prompt = {1, 2, 3};
  q.max_new_tokens = 60;
  q.max_length = 64;
  auto ch = std::make_shared<Channel>();
  EXPECT_FALSE(s.submit({Job{q, 0, ch}, Job{q, 1, ch}, Job{q, 2, ch}}));  // more than the queue holds
  ch->cancel();
  ASSERT_TRUE(s.submit({Job{q, 0, ch}, Job{q, 1, ch}}));
  auto [text, end] = drain(*ch, 2);
  EXPECT_EQ(end[0].finish, FinishReason::cancelled);
  EXPECT_EQ(end[1].finish, FinishReason::cancelled);
  s.stop();
  EXPECT_FALSE(s.submit({Job{q, 0, std::make_shared<Channel>()}}));
}

TEST(ServeApi, RefusesBadFieldsWithTheirName) {
  auto param_of = [](nlohmann::json body) {
    try {
      api::parse_completion(body, false, "m", 4);
    } catch (const api::ApiError& e) {
      EXPECT_EQ(e.status, 400);
      return e.param;
    }
    return std::string("(accepted)");
  };
  EXPECT_EQ(param_of(nlohmann::json::parse(R"({"prompt": "hi", "n": 0})")), "n");  // parsed 0 is unsigned
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"n", 5}}), "n");
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"max_tokens", -1}}), "max_tokens");
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"temperature", "hot"}}), "temperature");
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"model", "other"}}), "model");
  EXPECT_EQ(param_of({{"prompt", nullptr}}), "prompt");
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"n", 4}, {"stop", {"a", "b"}}}), "(accepted)");
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"presence_penalty", 2.5}}), "presence_penalty");
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"frequency_penalty", -2.1}}), "frequency_penalty");
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"repetition_penalty", 0}}), "repetition_penalty");
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"min_p", 1.5}}), "min_p");
  EXPECT_EQ(param_of({{"prompt", "hi"},
                      {"presence_penalty", 0.5},
                      {"frequency_penalty", -1},
                      {"min_p", 0.1},
                      {"repetition_penalty", 1.3}}),
            "(accepted)");
  // Features not built are refused unless the request asks for nothing.
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"logit_bias", {{"5", 1}}}}), "logit_bias");
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"presence_penalty", 0}, {"logprobs", false}, {"best_of", 1}}), "(accepted)");
}

TEST(Sampling, PenaltiesMatchFloat64) {
  const int V = 12;
  std::vector<float> logits(V);
  Rng rng(7);
  for (float& l : logits) l = 2.0f * rng.normal();
  const std::vector<int32_t> prompt = {3, 5, 3};
  const std::vector<int32_t> generated = {5, 7, 7, 9, 7};
  SamplingParams p;
  p.presence_penalty = 0.4f;
  p.frequency_penalty = -0.3f;
  p.repetition_penalty = 1.7f;
  TokenHistory h(prompt, V);
  for (int32_t t : generated) h.add_generated(t);
  std::vector<float> got = logits;
  apply_penalties(got.data(), p, h);
  for (int t = 0; t < V; t++) {
    double want = logits[t];
    const bool seen =
        std::count(prompt.begin(), prompt.end(), t) + std::count(generated.begin(), generated.end(), t) > 0;
    if (seen) want = want > 0 ? want / 1.7 : want * 1.7;
    const double count = static_cast<double>(std::count(generated.begin(), generated.end(), t));
    want -= 0.4 * (count > 0) + -0.3 * count;
    EXPECT_NEAR(got[t], want, 1e-5) << "token " << t;
  }
  // Off: the logits are untouched.
  std::vector<float> same = logits;
  apply_penalties(same.data(), SamplingParams{}, h);
  EXPECT_EQ(same, logits);
}

TEST(Sampling, MinPMatchesFloat64) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.5f, -1.0f, 0.2f, 2.9f};
  SamplingParams p;
  p.temperature = 0.5f;
  p.min_p = 0.3f;
  double z = 0, pmax = 0;
  std::vector<double> prob(logits.size());
  for (size_t i = 0; i < logits.size(); i++) z += prob[i] = std::exp(logits[i] / 0.5);
  for (double& x : prob) pmax = std::max(pmax, x /= z);
  double kept = 0;
  for (double x : prob)
    if (x >= 0.3 * pmax) kept += x;
  const auto dist = token_distribution(logits.data(), (int)logits.size(), p);
  std::vector<int32_t> ids;
  for (const auto& [id, q] : dist) {
    ids.push_back(id);
    EXPECT_NEAR(q, prob[id] / kept, 1e-12) << "token " << id;
  }
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 5, 2}));  // 2.5: p/pmax = exp(-1) >= 0.3; 1.0: exp(-4) < 0.3
  // Sampling never draws a token min-p removed.
  Rng rng(1);
  for (int i = 0; i < 2000; i++) {
    const int32_t t = sample_token(logits.data(), (int)logits.size(), p, rng);
    EXPECT_TRUE(t == 1 || t == 5 || t == 2) << t;
  }
}

// sample_token ranks only as far as it needs (a quickselect on cumulative weights): the token it
// draws is the one a walk down the fully sorted float64 distribution gives for the same draw.
TEST(Sampling, SampleTokenEqualsTheSortedWalk) {
  Rng gen(11);
  for (int trial = 0; trial < 60; trial++) {
    const int V = trial % 2 ? 3000 : 257;
    std::vector<float> logits(V);
    const float scale = 0.2f + (trial % 5);
    for (float& l : logits) l = scale * gen.normal();
    SamplingParams p;
    p.temperature = 0.4f + 0.3f * (trial % 4);
    p.top_k = trial % 3 == 0 ? 50 * (trial % 7) : 0;
    p.top_p = trial % 4 == 1 ? 0.9f : 1.0f;
    p.min_p = trial % 5 == 2 ? 0.05f : 0.0f;
    // The reference: sort everything, top-k, probabilities, top-p, min-p, renormalize.
    std::vector<int32_t> order(V);
    for (int i = 0; i < V; i++) order[i] = i;
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    size_t keep = p.top_k > 0 ? std::min<size_t>(p.top_k, V) : V;
    std::vector<double> prob(keep);
    double z = 0;
    for (size_t i = 0; i < keep; i++)
      z += prob[i] = std::exp(((double)logits[order[i]] - logits[order[0]]) / p.temperature);
    double acc = 0;
    for (size_t i = 0; i < keep && p.top_p < 1.0f; i++)
      if ((acc += prob[i] / z) >= p.top_p) keep = i + 1;
    while (keep > 1 && prob[keep - 1] < p.min_p) keep--;
    double total = 0;
    for (size_t i = 0; i < keep; i++) total += prob[i];
    const auto dist = token_distribution(logits.data(), V, p);
    ASSERT_EQ(dist.size(), keep) << "trial " << trial;
    Rng a(trial), b(trial);
    for (int draw = 0; draw < 200; draw++) {
      double u = b.uniform_double();
      int32_t want = order[keep - 1];
      for (size_t i = 0; i < keep; i++)
        if ((u -= prob[i] / total) < 0) {
          want = order[i];
          break;
        }
      ASSERT_EQ(sample_token(logits.data(), V, p, a), want) << "trial " << trial << " draw " << draw;
    }
  }
}

TEST(Sampling, GreedyGeneratorAppliesPenalties) {
  Model m = small_llama();
  Engine engine(m);
  KvCache cache(m.config());
  GenerationRequest q;
  q.prompt = {5, 17, 33, 2};
  q.max_new_tokens = 12;
  q.sampling.temperature = 0.0f;
  const std::vector<int32_t> plain = generate(engine, cache, std::span(&q, 1))[0].tokens;
  q.sampling.frequency_penalty = 1.5f;
  q.sampling.presence_penalty = 0.5f;
  q.sampling.repetition_penalty = 1.3f;
  const std::vector<int32_t> pen = generate(engine, cache, std::span(&q, 1))[0].tokens;
  ASSERT_EQ(pen.size(), 12u);
  EXPECT_NE(plain, pen);
  // Each step by hand: the logits of prompt + the tokens before, penalized in float64, argmax.
  const int V = m.config().vocab_size;
  std::vector<float> logits;
  for (size_t i = 0; i < pen.size(); i++) {
    std::vector<int32_t> ctx = q.prompt;
    ctx.insert(ctx.end(), pen.begin(), pen.begin() + i);
    const int s = cache.create();
    engine.forward(cache, std::vector<BatchEntry>{BatchEntry{s, ctx}}, logits);
    cache.release(s);
    int best = 0;
    double best_v = -1e300;
    for (int t = 0; t < V; t++) {
      double v = logits[t];
      if (std::count(ctx.begin(), ctx.end(), t)) v = v > 0 ? v / 1.3 : v * 1.3;
      const double c = static_cast<double>(std::count(pen.begin(), pen.begin() + i, t));
      v -= 0.5 * (c > 0) + 1.5 * c;
      if (v > best_v) best_v = v, best = t;
    }
    EXPECT_EQ(pen[i], best) << "step " << i;
  }
}

TEST(Sampling, TokenLogprobIsTheLogSoftmax) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.5f, -1.0f, 3.0f};
  double z = 0;
  for (float l : logits) z += std::exp((double)l);
  const TokenLogprob lp = token_logprob(logits.data(), 5, 2, 3);
  EXPECT_EQ(lp.token, 2);
  EXPECT_NEAR(lp.logprob, 2.5 - std::log(z), 1e-9);
  ASSERT_EQ(lp.top.size(), 3u);
  const std::vector<int32_t> ids = {lp.top[0].first, lp.top[1].first, lp.top[2].first};
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 4, 2}));  // ties by lower id
  EXPECT_NEAR(lp.top[0].second, 3.0 - std::log(z), 1e-9);
  EXPECT_TRUE(token_logprob(logits.data(), 5, 0, 0).top.empty());
}

TEST(ServeApi, LogprobsFields) {
  auto lp = [](nlohmann::json body, bool chat) { return api::parse_completion(body, chat, "m", 4).logprobs; };
  const nlohmann::json msgs = nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}});
  EXPECT_EQ(lp({{"prompt", "hi"}}, false), -1);
  EXPECT_EQ(lp({{"prompt", "hi"}, {"logprobs", 3}}, false), 3);
  EXPECT_EQ(lp({{"prompt", "hi"}, {"logprobs", 0}}, false), 0);
  EXPECT_EQ(lp({{"prompt", "hi"}, {"logprobs", false}}, false), -1);
  EXPECT_EQ(lp({{"messages", msgs}, {"logprobs", true}, {"top_logprobs", 2}}, true), 2);
  EXPECT_EQ(lp({{"messages", msgs}, {"logprobs", true}}, true), 0);
  EXPECT_EQ(lp({{"messages", msgs}, {"logprobs", false}}, true), -1);
  auto param_of = [](nlohmann::json body, bool chat) {
    try {
      api::parse_completion(body, chat, "m", 4);
    } catch (const api::ApiError& e) { return e.param; }
    return std::string("(accepted)");
  };
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"logprobs", 21}}, false), "logprobs");
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"logprobs", true}}, false), "logprobs");
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"top_logprobs", 2}}, false), "top_logprobs");
  EXPECT_EQ(param_of({{"messages", msgs}, {"top_logprobs", 2}}, true), "top_logprobs");
  EXPECT_EQ(param_of({{"messages", msgs}, {"logprobs", 2}}, true), "logprobs");
  EXPECT_EQ(param_of({{"messages", msgs}, {"logprobs", true}, {"top_logprobs", 21}}, true), "top_logprobs");
}
