// The GPU model path (model/cuda/cuda_model.h) against the CPU Model, for every block variant:
// fp32 mode matches the CPU's loss, logits and every gradient; bf16 mixed precision tracks a CPU
// training run; results repeat to the byte; weights and AdamW state survive GPU -> CPU
// checkpoint -> GPU. Needs the full project (model, train), so the kernels-only standalone
// build (tests/cuda/CMakeLists.txt) leaves this file out.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cuda_test_util.h"
#include "model_variants.h"
#include "kernels/cuda/cudnn_attention.h"
#include "model/cuda/cuda_model.h"
#include "model/model.h"
#include "train/optimizer.h"

namespace mindllm {
namespace {

using namespace cudatest;
using json = nlohmann::json;
using cudatest::Variant;
using cudatest::variants;

constexpr int kB = 3, kT = 17;  // odd sizes; T longer than the local window

struct Tokens {
  std::vector<int32_t> inputs, targets;
};

// A learnable sequence (next = 3 * prev + 1 mod V, with random restarts) and a few ignored targets.
Tokens make_tokens(int V, uint64_t seed) {
  Rng rng(seed);
  Tokens t;
  for (int b = 0; b < kB; b++) {
    int x = static_cast<int>(rng.next_u64() % V);
    for (int i = 0; i <= kT; i++) {
      if (i < kT) t.inputs.push_back(x);
      if (i > 0) t.targets.push_back(x);
      x = rng.next_u64() % 11 == 0 ? static_cast<int>(rng.next_u64() % V) : (3 * x + 1) % V;
    }
  }
  t.targets[1] = t.targets[kT + 4] = -1;
  return t;
}

Model cpu_model(const Variant& v, uint64_t seed = 7) {
  Model m(config_from_json(v.config, v.name));
  m.init_weights(seed);
  return m;
}

std::vector<cpu::AdamWSpan> spans_of(const Model& m) { return AdamW(m.layout(), AdamWConfig{}).spans(); }

CudaModel gpu_model(const Model& m, Precision p) {
  CudaModel g(m.config(), kB, kT, p, spans_of(m));
  EXPECT_EQ(g.arena_bytes(), CudaModel::planned_bytes(m.config(), kB, kT, p, spans_of(m).size()));
  g.upload_params(m.params());
  return g;
}

// Per-tensor relative error of a flat buffer (the worst tensor).
double worst_tensor_err(const ParamLayout& layout, const std::vector<float>& got, const std::vector<float>& want,
                        std::string* which) {
  double worst = 0.0;
  for (const ParamSpec& s : layout.specs) {
    std::vector<float> a(got.begin() + s.offset, got.begin() + s.offset + s.numel);
    std::vector<float> b(want.begin() + s.offset, want.begin() + s.offset + s.numel);
    double e = rel_err(a, b);
    if (!(e <= worst)) worst = e, *which = s.name;
  }
  return worst;
}

class CudaModelTest : public ::testing::TestWithParam<Variant> {};

// fp32: logits, the loss and every gradient (two accumulated micro-batches) as the CPU's.
TEST_P(CudaModelTest, Fp32MatchesCpu) {
  SKIP_WITHOUT_GPU();
  Model cpu = cpu_model(GetParam());
  CudaModel gpu = gpu_model(cpu, Precision::fp32);
  const int V = cpu.config().vocab_size;
  Tokens t1 = make_tokens(V, 1), t2 = make_tokens(V, 2);

  cpu.forward(t1.inputs.data(), nullptr, kB, kT);
  gpu.forward(t1.inputs.data(), nullptr, kB, kT);
  std::vector<float> want_logits(cpu.logits(), cpu.logits() + (size_t)kB * kT * V);
  EXPECT_CLOSE(gpu.download_logits(), want_logits, kF32Tol);

  cpu.zero_grads();
  gpu.zero_grads();
  double cpu_loss = 0.0;
  for (const Tokens* t : {&t1, &t2}) {
    cpu_loss += cpu.forward(t->inputs.data(), t->targets.data(), kB, kT);
    cpu.backward(0.5f);
    gpu.forward(t->inputs.data(), t->targets.data(), kB, kT);
    gpu.backward(0.5f);
  }
  EXPECT_CLOSE(std::vector<float>{(float)gpu.loss_sum()}, std::vector<float>{(float)cpu_loss}, kF32Tol);
  std::vector<float> grads;
  gpu.download_grads(grads);
  EXPECT_CLOSE(grads, cpu.grads(), kF32Tol);  // relative to the largest gradient
  std::string which;
  double e = worst_tensor_err(cpu.layout(), grads, cpu.grads(), &which);
  record_err(e);
  EXPECT_LE(e, 1e-4) << "worst tensor " << which;
}

// bf16 mixed precision: 20 clipped AdamW steps track the CPU's fp32 run. The first step starts
// from the same weights (every gradient tensor within bf16 accuracy); after that the two runs
// drift apart (bf16 rounding, amplified by Adam's normalised updates of tiny gradients), so the
// first steps are held tightly and the rest only loosely, plus the mean of the last five losses.
// (A PyTorch bf16-vs-fp32 simulation of these shapes saw at most 7e-4 / 0.7% on the loss / norm
// of steps 0-2 but up to 4% / 84% on single later steps with head dim 64, and 1.3% on the mean.)
TEST_P(CudaModelTest, Bf16TracksCpuTraining) {
  SKIP_WITHOUT_GPU();
  Model cpu = cpu_model(GetParam());
  CudaModel gpu = gpu_model(cpu, Precision::bf16);
  const int hd = cpu.config().head_dim;
  EXPECT_EQ(gpu.flash_attention(), hd == 64 || hd == 128) << "head dim " << hd;
  AdamWConfig cfg;
  AdamW optim(cpu.layout(), cfg);
  const float lr = 3e-3f, clip = 1.0f;
  const int V = cpu.config().vocab_size;
  constexpr int kSteps = 20, kEarly = 3, kLast = 5;
  double worst = 0.0, cpu_last = 0.0, gpu_last = 0.0;
  for (int step = 0; step < kSteps; step++) {
    Tokens t = make_tokens(V, 100 + step);
    cpu.zero_grads();
    float cpu_loss = cpu.forward(t.inputs.data(), t.targets.data(), kB, kT);
    cpu.backward();
    double norm = grad_norm(cpu);
    optim.step(cpu, lr, static_cast<float>(std::min(1.0, clip / (norm + 1e-6))));

    gpu.zero_grads();
    gpu.forward(t.inputs.data(), t.targets.data(), kB, kT);
    gpu.backward();
    if (step == 0) {  // same weights: each gradient tensor as the fp32 one to bf16 accuracy
      std::vector<float> grads;
      gpu.download_grads(grads);
      std::string which;
      double e = worst_tensor_err(cpu.layout(), grads, cpu.grads(), &which);
      record_err(e);
      EXPECT_LE(e, 6e-2) << "step 0: worst gradient tensor " << which;
    }
    CudaStepResult r = gpu.step({lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay, 0}, clip, 1);
    ASSERT_FALSE(r.skipped);
    const bool early = step < kEarly;
    double e = std::fabs(r.loss - cpu_loss) / cpu_loss;
    if (early) worst = std::max(worst, e);
    EXPECT_LE(e, early ? 5e-3 : 1e-1) << "step " << step << ": gpu loss " << r.loss << ", cpu " << cpu_loss;
    if (early) { EXPECT_NEAR(r.grad_norm, norm, 0.05 * norm + 1e-3) << "step " << step; }
    EXPECT_TRUE(std::isfinite(r.grad_norm)) << "step " << step;
    if (step >= kSteps - kLast) cpu_last += cpu_loss / kLast, gpu_last += r.loss / kLast;
  }
  record_err(worst);
  EXPECT_LE(std::fabs(gpu_last - cpu_last) / cpu_last, 3e-2)
      << "mean loss of the last " << kLast << " steps: gpu " << gpu_last << ", cpu " << cpu_last;
  EXPECT_EQ(gpu.optimizer_steps(), kSteps);
}

// Recomputing the MLP intermediates in the backward gives the same bytes as keeping them, in a
// smaller arena.
TEST_P(CudaModelTest, RecomputeMlpGivesTheSameBytes) {
  SKIP_WITHOUT_GPU();
  Model cpu = cpu_model(GetParam());
  for (Precision p : {Precision::bf16, Precision::fp32}) {
    CudaModel keep = gpu_model(cpu, p);
    CudaModel again(cpu.config(), kB, kT, p, spans_of(cpu), /*recompute_mlp=*/true);
    again.upload_params(cpu.params());
    EXPECT_TRUE(again.recompute_mlp());
    EXPECT_LT(again.arena_bytes(), keep.arena_bytes());
    Tokens t = make_tokens(cpu.config().vocab_size, 5);
    std::vector<float> g1, g2;
    for (CudaModel* m : {&keep, &again}) {
      m->zero_grads();
      m->forward(t.inputs.data(), t.targets.data(), kB, kT);
      m->backward();
    }
    keep.download_grads(g1);
    again.download_grads(g2);
    EXPECT_EQ(keep.loss_sum(), again.loss_sum());
    EXPECT_TRUE(std::memcmp(g1.data(), g2.data(), g1.size() * sizeof(float)) == 0)
        << (p == Precision::bf16 ? "bf16" : "fp32") << ": gradients differ with recomputation";
  }
}

// Same inputs, same bytes: the loss, the gradients and a few updates.
TEST_P(CudaModelTest, RepeatsToTheByte) {
  SKIP_WITHOUT_GPU();
  Model cpu = cpu_model(GetParam());
  CudaModel a = gpu_model(cpu, Precision::bf16), b = gpu_model(cpu, Precision::bf16);
  Tokens t = make_tokens(cpu.config().vocab_size, 5);
  std::vector<double> losses;
  std::vector<std::vector<float>> grads(2), params(2);
  for (CudaModel* g : {&a, &b}) {
    for (int step = 0; step < 3; step++) {
      g->zero_grads();
      g->forward(t.inputs.data(), t.targets.data(), kB, kT);
      g->backward();
      if (step == 0) losses.push_back(g->loss_sum()), g->download_grads(grads[g == &b]);
      g->step({1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0}, 1.0f, 1);
    }
    g->download_params(params[g == &b]);
  }
  EXPECT_TRUE(same_bytes(losses.data(), losses.data() + 1, sizeof(double)));
  EXPECT_TRUE(same_bytes(grads[0], grads[1]));
  EXPECT_TRUE(same_bytes(params[0], params[1]));
}

// GPU -> CPU checkpoint files -> GPU: weights and AdamW state come back unchanged, and the next
// step is the same on both GPU models.
TEST_P(CudaModelTest, CheckpointRoundTrip) {
  SKIP_WITHOUT_GPU();
  Model cpu = cpu_model(GetParam());
  AdamW optim(cpu.layout(), AdamWConfig{});
  CudaModel gpu = gpu_model(cpu, Precision::bf16);
  auto train_step = [&](CudaModel& g, uint64_t seed) {
    Tokens t = make_tokens(cpu.config().vocab_size, seed);
    g.zero_grads();
    g.forward(t.inputs.data(), t.targets.data(), kB, kT);
    g.backward();
    return g.step({1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0}, 1.0f, 1);
  };
  for (int s = 0; s < 3; s++) train_step(gpu, 10 + s);

  const std::string dir =
      (std::filesystem::temp_directory_path() / ("mindllm_cuda_roundtrip_" + std::string(GetParam().name))).string();
  std::filesystem::create_directories(dir);
  gpu.download_params(cpu.params());
  gpu.download_optimizer(optim.exp_avg(), optim.exp_avg_sq());
  optim.set_steps_taken(gpu.optimizer_steps());
  cpu.save(dir);
  optim.save(dir + "/optimizer.safetensors");

  Model loaded(cpu.config());
  loaded.load_weights(dir);
  AdamW loaded_optim(loaded.layout(), AdamWConfig{});
  loaded_optim.load(dir + "/optimizer.safetensors");
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(same_bytes(loaded.params(), cpu.params()));
  CudaModel back = gpu_model(loaded, Precision::bf16);
  back.upload_optimizer(loaded_optim.exp_avg(), loaded_optim.exp_avg_sq(), loaded_optim.steps_taken());
  std::vector<float> p1, p2;
  back.download_params(p1);
  EXPECT_TRUE(same_bytes(p1, cpu.params()));

  CudaStepResult r1 = train_step(gpu, 99), r2 = train_step(back, 99);
  EXPECT_TRUE(same_bytes(&r1.loss, &r2.loss, sizeof(float)));
  gpu.download_params(p1);
  back.download_params(p2);
  EXPECT_TRUE(same_bytes(p1, p2));
  EXPECT_EQ(back.optimizer_steps(), 4);
}

INSTANTIATE_TEST_SUITE_P(Variants, CudaModelTest, ::testing::ValuesIn(variants()),
                         [](const ::testing::TestParamInfo<Variant>& i) { return std::string(i.param.name); });

// A non-finite loss skips the update on the device (no host round trip decides it), as the CPU
// trainer skips it: weights and the optimizer's step count stay.
TEST(CudaModel, NonFiniteLossSkipsTheUpdate) {
  SKIP_WITHOUT_GPU();
  Model cpu = cpu_model(variants()[2]);
  cpu.params()[cpu.layout().lm_head] = NAN;
  CudaModel gpu = gpu_model(cpu, Precision::bf16);
  Tokens t = make_tokens(cpu.config().vocab_size, 3);
  gpu.zero_grads();
  gpu.forward(t.inputs.data(), t.targets.data(), kB, kT);
  gpu.backward();
  CudaStepResult r = gpu.step({1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0}, 1.0f, 1);
  EXPECT_TRUE(r.skipped);
  EXPECT_EQ(gpu.optimizer_steps(), 0);
  std::vector<float> after;
  gpu.download_params(after);
  EXPECT_TRUE(same_bytes(after, cpu.params()));
}

// --attention cudnn against the flash kernels on the head-dim-64 variants (GQA LLaMA; GPT-Neo with
// a local layer and unscaled scores): the same loss and gradients to bf16 accuracy.
TEST(CudaModel, CudnnAttentionMatchesFlash) {
  SKIP_WITHOUT_GPU();
  std::string why;
  if (!cuda::cudnn_attention_available(&why)) GTEST_SKIP() << "no cuDNN: " << why;
  for (const Variant& v : variants()) {
    if (std::string(v.name).find("hd64") == std::string::npos) continue;
    SCOPED_TRACE(v.name);
    Model cpu = cpu_model(v);
    CudaModel flash = gpu_model(cpu, Precision::bf16);
    CudaModel cudnn(cpu.config(), kB, kT, Precision::bf16, spans_of(cpu), false, AttentionImpl::cudnn);
    ASSERT_EQ(cudnn.attention_impl(), AttentionImpl::cudnn);
    cudnn.upload_params(cpu.params());
    Tokens t = make_tokens(cpu.config().vocab_size, 5);
    std::vector<float> grads[2];
    double loss[2];
    CudaModel* models[2] = {&flash, &cudnn};
    for (int i = 0; i < 2; i++) {
      models[i]->zero_grads();
      models[i]->forward(t.inputs.data(), t.targets.data(), kB, kT);
      models[i]->backward();
      loss[i] = models[i]->loss_sum();
      models[i]->download_grads(grads[i]);
    }
    EXPECT_NEAR(loss[1], loss[0], 5e-3 * loss[0]);
    std::string which;
    const double e = worst_tensor_err(cpu.layout(), grads[1], grads[0], &which);
    record_err(e);
    EXPECT_LE(e, 6e-2) << "worst gradient tensor " << which;
  }
}

}  // namespace
}  // namespace mindllm

namespace mindllm {
namespace {

// The GPU memory plan is host arithmetic: these run without a GPU. The benchmark shapes of
// docs/cuda-speed.md must fit an 80 GB H100 (79.6 GiB usable) next to the CUDA context and
// cuBLASLt's workspace (kHeadroom), and the plan must scale as the buffers say.
ModelConfig llama_shape(int layers, int hidden, int heads, int mlp) {
  return config_from_json({{"model_type", "llama"},
                           {"vocab_size", 64000},
                           {"hidden_size", hidden},
                           {"num_hidden_layers", layers},
                           {"num_attention_heads", heads},
                           {"intermediate_size", mlp},
                           {"max_position_embeddings", 2048}},
                          "test");
}

TEST(CudaModelMemory, BenchmarkShapesFitAn80GBCard) {
  constexpr double kGiB = 1024.0 * 1024 * 1024, kUsable = 79.6 * kGiB, kHeadroom = 1.5 * kGiB;
  struct Case {
    const char* name;
    ModelConfig cfg;
    int batch;
    bool recompute;
  };
  const std::vector<Case> cases = {
      {"llama-1.3b x8", llama_shape(24, 2048, 16, 5632), 8, false},
      {"llama-3b x4", llama_shape(32, 2560, 20, 6912), 4, false},
      {"llama-3b x4 --recompute", llama_shape(32, 2560, 20, 6912), 4, true},
      {"mindllm-3b (DeepNorm GeGLU) x4", resolve_model_config("mindllm-3b", nullptr), 4, false},
  };
  for (const Case& c : cases) {
    const size_t spans = build_layout(c.cfg).total / 4096 + 1024;  // more than AdamW cuts
    const double bytes = (double)CudaModel::planned_bytes(c.cfg, c.batch, 2048, Precision::bf16, spans, c.recompute);
    std::printf("  %-32s %6.1f GiB planned\n", c.name, bytes / kGiB);
    EXPECT_LE(bytes + kHeadroom, kUsable) << c.name;
  }
}

TEST(CudaModelMemory, PlanScalesWithTheBuffers) {
  const ModelConfig cfg = llama_shape(4, 256, 4, 688);
  const size_t total = build_layout(cfg).total, N = 2 * 128;
  auto plan = [&](int B, bool recompute, Precision p = Precision::bf16) {
    return CudaModel::planned_bytes(cfg, B, 128, p, 16, recompute);
  };
  // Weights, gradients, two moments (fp32) and the bf16 copy, whatever the batch.
  EXPECT_GE(plan(1, false), total * (4 * sizeof(float) + 2));
  // Activations grow linearly with the micro-batch (up to the 256-byte alignment of each buffer).
  const double step1 = (double)plan(2, false) - plan(1, false), step2 = (double)plan(3, false) - plan(2, false);
  EXPECT_NEAR(step1, step2, 256.0 * 200);
  // Recomputing the MLP keeps one [N, 2H] + [N, H] bf16 pair instead of one per layer.
  const double saved = (double)plan(2, false) - plan(2, true);
  EXPECT_NEAR(saved, (cfg.n_layers - 1) * N * 3 * cfg.intermediate * 2.0, 256.0 * 16);
  // Per sequence, fp32 activations (and the simple attention's T x T probabilities) take more
  // than twice the bf16 ones.
  const double fp32_step = (double)plan(3, false, Precision::fp32) - plan(2, false, Precision::fp32);
  EXPECT_GT(fp32_step, 2 * step2);
}

}  // namespace
}  // namespace mindllm
