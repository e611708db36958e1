// The inference engine on the GPU (model/cuda/cuda_engine.h) against the CPU Engine: the same
// logits (fp32, 1e-5) for every family (gpt2: learned positions; gpt_neo: a local window shorter
// than the prompts; llama: partial RoPE, GQA, biases; model_variants.h) over batches that mix prefill chunks and decode
// tokens of sequences of different lengths, each sequence alone = in a batch, batches larger than the engine's plan
// (run in pieces), fork and the prefix cache on the device pool. Needs the full project (model), so the kernels-only
// standalone build leaves this file out.
#include "cuda_test_util.h"
#include "model_variants.h"
#include "model/cuda/cuda_engine.h"
#include "model/engine.h"
#include "model/model.h"

namespace mindllm {
namespace {

using namespace cudatest;

// One model per family: learned positions, a local window (8, shorter than the longer prompts),
// RoPE (partial) with GQA and biases; and DeepNorm's post-norm blocks with MQA.
std::vector<Variant> families() {
  return {variant("gpt2"), variant("gpt_neo_local"), variant("llama_swiglu_gqa"), variant("llama_deepnorm")};
}

constexpr int kBlock = 4;  // small blocks: every prompt spans several, most end in a partial one

std::vector<int32_t> prompt(int len, int seed) {
  std::vector<int32_t> p(len);
  for (int i = 0; i < len; i++) p[i] = (seed * 31 + i * 7 + 3) % 97;
  return p;
}

// One engine with its cache; forward returns the logits.
struct Session {
  InferenceEngine& engine;
  KvCache cache;
  Session(InferenceEngine& e, bool prefix = false) : engine(e), cache(e.make_cache(kBlock, 512, KvType::f32)) {
    if (prefix) cache.enable_prefix_cache();
  }
  std::vector<float> forward(const std::vector<BatchEntry>& batch) {
    std::vector<float> logits;
    engine.forward(cache, batch, logits);
    return logits;
  }
};

class CudaEngineTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    if (!cuda::available()) GTEST_SKIP() << "skipped: no GPU";
    model_ = std::make_unique<Model>(config_from_json(GetParam().config, GetParam().name));
    model_->init_weights(11);
    cpu_ = std::make_unique<Engine>(*model_);
    gpu_ = std::make_unique<CudaEngine>(*model_, Precision::fp32, 64);
  }
  std::unique_ptr<Model> model_;
  std::unique_ptr<Engine> cpu_;
  std::unique_ptr<CudaEngine> gpu_;
};

// 8 prompts of different lengths (some wanting every row's logits), then decode steps in which a
// new prompt is prefilled next to the decoding sequences: every step's logits = the CPU's.
TEST_P(CudaEngineTest, MixedBatchesMatchCpu) {
  Session cpu(*cpu_), gpu(*gpu_);
  const int V = model_->config().vocab_size;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 8; i++) prompts.push_back(prompt(1 + (i * 5) % 13, i));
  std::vector<int> seqs;
  std::vector<BatchEntry> batch;
  for (int i = 0; i < 8; i++) {
    ASSERT_EQ(cpu.cache.create(), gpu.cache.create());
    seqs.push_back(i);
    batch.push_back(BatchEntry{i, prompts[i], i % 3 == 0 ? 0 : -1});
  }
  std::vector<float> want = cpu.forward(batch), got = gpu.forward(batch);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_CLOSE(got, want, kF32Tol);
  std::vector<int32_t> next(9);
  const std::vector<int32_t> late = prompt(11, 42);
  for (int step = 0; step < 3; step++) {
    batch.clear();
    for (int i = 0; i < 8; i++) {
      next[i] = (step * 13 + i * 3) % V;
      batch.push_back(BatchEntry{i, std::span<const int32_t>(&next[i], 1)});
    }
    if (step == 1) {  // a prefill chunk among the decode tokens
      ASSERT_EQ(cpu.cache.create(), gpu.cache.create());
      batch.insert(batch.begin() + 3, BatchEntry{8, late, 2});
    }
    want = cpu.forward(batch), got = gpu.forward(batch);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_CLOSE(got, want, kF32Tol);
  }
  for (int i = 0; i < 8; i++) EXPECT_EQ(gpu.cache.tokens(i), cpu.cache.tokens(i));
  EXPECT_EQ(gpu_->tokens_computed(), cpu_->tokens_computed());
}

// Each prompt alone (fresh cache) gives the logits it gets inside a batch; a batch larger than the
// engine's 64 planned rows runs in pieces and still matches.
TEST_P(CudaEngineTest, AloneEqualsBatchedAndPieces) {
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 8; i++) prompts.push_back(prompt(3 + i * 2, i + 5));  // 94 rows in all
  const int V = model_->config().vocab_size;
  Session batched(*gpu_);
  std::vector<BatchEntry> batch;
  for (int i = 0; i < 8; i++) batch.push_back(BatchEntry{batched.cache.create(), prompts[i], 1});
  const std::vector<float> all = batched.forward(batch);
  Session cpu(*cpu_);
  for (int i = 0; i < 8; i++) cpu.cache.create();
  EXPECT_CLOSE(all, cpu.forward(batch), kF32Tol);
  size_t at = 0;
  for (int i = 0; i < 8; i++) {
    Session alone(*gpu_);
    const std::vector<float> one = alone.forward({BatchEntry{alone.cache.create(), prompts[i], 1}});
    const std::vector<float> part(all.begin() + at, all.begin() + at + one.size());
    SCOPED_TRACE("prompt " + std::to_string(i));
    EXPECT_CLOSE(one, part, kF32Tol);
    at += one.size();
  }
  EXPECT_EQ(at, all.size());
  EXPECT_EQ(all.size() % V, 0u);
}

// fork() of a sequence ending in a partly filled block (copy-on-write on the device), and a new
// sequence taking its prefix from the prefix cache: the CPU's logits.
TEST_P(CudaEngineTest, ForkAndPrefixCache) {
  Session cpu(*cpu_, true), gpu(*gpu_, true);
  const std::vector<int32_t> p = prompt(10, 3), a = prompt(3, 8), b = prompt(2, 9);
  for (Session* r : {&cpu, &gpu}) r->cache.create();
  EXPECT_CLOSE(gpu.forward({BatchEntry{0, p}}), cpu.forward({BatchEntry{0, p}}), kF32Tol);
  ASSERT_EQ(cpu.cache.fork(0), 1);
  ASSERT_EQ(gpu.cache.fork(0), 1);
  const std::vector<BatchEntry> both{BatchEntry{0, a, 0}, BatchEntry{1, b, 0}};
  EXPECT_CLOSE(gpu.forward(both), cpu.forward(both), kF32Tol);
  // The parent continues unchanged by the child's writes into its copy of the shared last block.
  const std::vector<BatchEntry> more{BatchEntry{0, b, 0}, BatchEntry{1, a, 0}};
  EXPECT_CLOSE(gpu.forward(more), cpu.forward(more), kF32Tol);
  for (Session* r : {&cpu, &gpu}) r->cache.release(0), r->cache.release(1);
  std::vector<int32_t> again = p;
  again.insert(again.end(), a.begin(), a.end());
  ASSERT_EQ(gpu.cache.cached_prefix(again), 12);
  const int sc = cpu.cache.create_from_prefix(again, 12), sg = gpu.cache.create_from_prefix(again, 12);
  const std::span<const int32_t> rest(again.data() + 12, again.size() - 12);
  EXPECT_CLOSE(gpu.forward({BatchEntry{sg, rest, 0}}), cpu.forward({BatchEntry{sc, rest, 0}}), kF32Tol);
}

// bf16 compute (bf16 weights copy, activations and K/V cache) tracks the fp32 CPU engine.
TEST_P(CudaEngineTest, Bf16TracksCpu) {
  CudaEngine bf(*model_, Precision::bf16, 64);
  ASSERT_EQ(bf.kv_type(), KvType::bf16);
  KvCache cache = bf.make_cache(kBlock, 64, KvType::bf16);
  Session cpu(*cpu_);
  const std::vector<int32_t> p = prompt(9, 1);
  std::vector<float> got;
  bf.forward(cache, std::vector<BatchEntry>{BatchEntry{cache.create(), p, 0}}, got);
  EXPECT_CLOSE(got, cpu.forward({BatchEntry{cpu.cache.create(), p, 0}}), 5e-2);
}

INSTANTIATE_TEST_SUITE_P(Families, CudaEngineTest, ::testing::ValuesIn(families()),
                         [](const auto& info) { return std::string(info.param.name); });

// A host cache is refused by the GPU engine; a device cache needs a size.
TEST(CudaEngine, CacheChecks) {
  SKIP_WITHOUT_GPU();
  Model model(config_from_json(families()[2].config, "llama"));
  model.init_weights(1);
  CudaEngine gpu(model, Precision::fp32, 8);
  KvCache host(model.config(), kBlock, 64);
  std::vector<float> logits;
  const std::vector<int32_t> p = prompt(3, 1);
  EXPECT_THROW(gpu.forward(host, std::vector<BatchEntry>{BatchEntry{host.create(), p}}, logits), Error);
  EXPECT_THROW(gpu.make_cache(kBlock, 0, KvType::f32), Error);
  // Bad input changes nothing: a token outside the vocabulary.
  KvCache dev = gpu.make_cache(kBlock, 64, KvType::f32);
  const int s = dev.create();
  const std::vector<int32_t> bad{1, 200};
  EXPECT_THROW(gpu.forward(dev, std::vector<BatchEntry>{BatchEntry{s, bad}}, logits), Error);
  EXPECT_EQ(dev.length(s), 0);
  EXPECT_EQ(dev.blocks_in_use(), 0);
}

}  // namespace
}  // namespace mindllm
