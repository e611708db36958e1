// The server's pieces without HTTP: the continuous-batching scheduler (greedy output equals
// generate()'s however requests are batched and chunked; the queue bound; cancellation) and the
// API's request validation.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "model/config.h"
#include "model/engine.h"
#include "serve/api.h"
#include "serve/scheduler.h"

using namespace mindllm;

namespace {

Model small_llama() {
  Model m(config_from_json({{"model_type", "llama"}, {"vocab_size", 97}, {"hidden_size", 32},
                            {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                            {"intermediate_size", 48}, {"max_position_embeddings", 64}, {"hidden_act", "silu"},
                            {"rms_norm_eps", 1e-5}, {"tie_word_embeddings", false}},
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
  Scheduler s(engine, tt, SchedulerOptions{3, 16, 64, 8});
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

TEST(Scheduler, QueueBoundAndCancellation) {
  Model m = small_llama();
  Engine engine(m);
  TokenText tt = [](int32_t id) { return std::string(1, char('a' + id % 26)); };
  Scheduler s(engine, tt, SchedulerOptions{1, 2, 64, 512});
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
  // Features not built are refused unless the request asks for nothing.
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"presence_penalty", 0.5}}), "presence_penalty");
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"logprobs", 2}}), "logprobs");
  EXPECT_EQ(param_of({{"prompt", "hi"}, {"presence_penalty", 0}, {"logprobs", false}, {"best_of", 1}}), "(accepted)");
}
