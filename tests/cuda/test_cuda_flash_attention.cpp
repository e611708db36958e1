// Flash attention (kernels/cuda/flash_attention.h), and cuDNN's (kernels/cuda/cudnn_attention.h)
// where the build and machine have it, against the CPU attention op on the same
// bf16-rounded inputs: T = 1, 77, 128, 257, 300, 1024; head dims 64 and 128; MHA, GQA 8:2, MQA;
// local window 16, 70 (longer than a tile) and a window longer than T; GPT-Neo's scale 1;
// separate, packed and unaligned (odd row stride: the scalar load path) q/k/v; packed samples
// (block-diagonal attention, sft --packing), alone and with a window. Checks out, the
// saved logsumexp (against float64), dq, dk, dv, that gaps between the heads of a row stay
// untouched, and that both passes give the same bytes twice.
#include <cstdio>
#include <string>

#include "core/error.h"
#include "cuda_test_util.h"
#include "kernels/cpu/attention.h"
#include "kernels/cuda/cudnn_attention.h"
#include "kernels/cuda/flash_attention.h"

namespace mindllm {
namespace {

using namespace cudatest;
using cpu::AttentionShape;

struct FlashCase {
  int B, T, Hq, Hkv, D;
  bool packed;  // q, k, v inside one [B*T, ld] buffer at offsets 0, Hq D, (Hq + Hkv) D (the model's qkv)
  int gap;      // packed only: extra unused columns at the end of each row (odd: no 16-byte loads)
  float scale;  // 0: 1/sqrt(D)
  int window;
  float input_scale;
  int seg = 0;  // > 0: packed samples of 1..2·seg positions (seeded), attention confined to each
};
const FlashCase kCases[] = {
    {2, 1, 4, 4, 64, false, 0, 0.0f, 0, 1.0f},           // one token
    {2, 77, 4, 4, 64, false, 0, 0.0f, 0, 1.0f},          // MHA, T not a multiple of the tile
    {1, 128, 8, 2, 128, true, 0, 0.0f, 0, 1.0f},         // GQA 8:2, packed, exactly two tiles
    {1, 257, 4, 1, 64, true, 0, 1.0f, 16, 0.3f},         // MQA, window 16, unscaled (GPT-Neo)
    {2, 257, 8, 2, 128, false, 0, 0.0f, 300, 1.0f},      // window longer than T = global
    {1, 77, 4, 2, 64, true, 1, 0.0f, 0, 1.0f},           // odd row stride: scalar loads and stores
    {1, 300, 4, 2, 64, false, 0, 0.0f, 70, 1.0f},        // window 70: longer than a tile, shorter than T
    {1, 1024, 8, 2, 64, true, 0, 0.0f, 0, 1.0f},         // long, GQA 8:2
    {1, 1024, 4, 4, 128, false, 0, 0.0f, 0, 1.0f},       // long, MHA, D = 128
    {1, 1024, 4, 1, 128, true, 0, 1.0f, 16, 0.3f},       // long, MQA, window 16: most key blocks skipped
    {2, 300, 4, 2, 64, true, 0, 0.0f, 0, 1.0f, 40},      // packed samples (block-diagonal), GQA
    {1, 257, 4, 1, 64, true, 1, 1.0f, 16, 0.3f, 30},     // packed samples with a window, GPT-Neo
    {1, 1024, 4, 4, 128, false, 0, 0.0f, 0, 1.0f, 150},  // long packed samples across tiles
};

std::string describe(const FlashCase& c) {
  return "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " Hq=" + std::to_string(c.Hq) +
         " Hkv=" + std::to_string(c.Hkv) + " D=" + std::to_string(c.D) + " packed=" + std::to_string(c.packed) +
         " gap=" + std::to_string(c.gap) + " window=" + std::to_string(c.window) + " seg=" + std::to_string(c.seg);
}

// One case's inputs (bf16-rounded) and the CPU results on them.
struct FlashData {
  AttentionShape s;
  size_t q_off, k_off, v_off, qkv_size, out_size, stat_size;
  std::vector<float> qkv, dout;
  std::vector<float> out, dqkv;    // CPU forward and backward
  std::vector<double> lse;         // float64 logsumexp of the scaled scores, [B, Hq, T]
  std::vector<bool> gap_mask;      // qkv elements that belong to no head
  std::vector<int32_t> seg_start;  // packed cases: [B*T] (s.seg_start points at it)
};

// Segment starts of a packed case: seeded lengths in [1, 2 seg], the last one cut at T.
std::vector<int32_t> segments_of(const FlashCase& c) {
  std::vector<int32_t> st;
  if (c.seg == 0) return st;
  Rng rng(c.T + c.seg);
  for (int b = 0; b < c.B; b++)
    for (int t = 0; t < c.T;) {
      const int start = t, len = 1 + (int)rng.below(2 * c.seg);
      for (int i = 0; i < len && t < c.T; i++, t++) st.push_back(start);
    }
  return st;
}

// The case's attention shape: packed rows of Q + 2 KV (+ gap) columns, or three separate buffers.
AttentionShape shape_of(const FlashCase& c) {
  const int Q = c.Hq * c.D, KV = c.Hkv * c.D, ld = Q + 2 * KV + c.gap;
  const float scale = c.scale > 0 ? c.scale : 1.0f / std::sqrt((float)c.D);
  if (c.packed) return AttentionShape{c.B, c.T, c.Hq, c.Hkv, c.D, ld, ld, ld, Q, scale, c.window};
  return AttentionShape{c.B, c.T, c.Hq, c.Hkv, c.D, Q, KV, KV, Q, scale, c.window};
}

FlashData make_case(const FlashCase& c, bool with_backward) {
  FlashData a;
  Rng rng(c.T * 131 + c.Hq * 17 + c.Hkv * 5 + c.D + c.window + c.gap);
  const int N = c.B * c.T, Q = c.Hq * c.D, KV = c.Hkv * c.D;
  a.s = shape_of(c);
  a.seg_start = segments_of(c);
  if (c.seg) a.s.seg_start = a.seg_start.data();
  a.gap_mask.clear();
  if (c.packed) {
    const int ld = a.s.ldq;
    a.q_off = 0, a.k_off = Q, a.v_off = Q + KV, a.qkv_size = (size_t)N * ld;
    a.gap_mask.resize(a.qkv_size);
    for (size_t i = 0; i < a.qkv_size; i++) a.gap_mask[i] = (int)(i % ld) >= Q + 2 * KV;
  } else {
    a.q_off = 0, a.k_off = (size_t)N * Q, a.v_off = a.k_off + (size_t)N * KV, a.qkv_size = a.v_off + (size_t)N * KV;
    a.gap_mask.assign(a.qkv_size, false);
  }
  a.out_size = (size_t)N * Q;
  a.stat_size = (size_t)c.B * c.Hq * c.T;
  a.qkv = round_bf16(random_normal(a.qkv_size, rng, c.input_scale));
  a.dout = round_bf16(random_normal(a.out_size, rng));

  a.out.assign(a.out_size, 0.0f);
  const float* q = a.qkv.data();
  std::vector<float> stats((size_t)c.B * c.Hq * c.T * cpu::kAttentionStats);
  cpu::attention_forward(a.out.data(), stats.data(), q + a.q_off, q + a.k_off, q + a.v_off, a.s);
  if (with_backward) {
    a.dqkv.assign(a.qkv_size, 0.0f);
    cpu::attention_backward(a.dqkv.data() + a.q_off, a.dqkv.data() + a.k_off, a.dqkv.data() + a.v_off, a.dout.data(),
                            stats.data(), q + a.q_off, q + a.k_off, q + a.v_off, a.s);
  }

  // lse[b, h, t] = log Σ_{visible s} exp(scale · q_t·k_s), in float64.
  const AttentionShape& s = a.s;
  a.lse.assign(a.stat_size, 0.0);
  std::vector<double> row;
  for (int b = 0; b < s.B; b++)
    for (int h = 0; h < s.Hq; h++)
      for (int t = 0; t < s.T; t++)
        ref_softmax_row(row, a.lse[((size_t)b * s.Hq + h) * s.T + t], q + a.q_off, q + a.k_off, s, b, h, t);
  return a;
}

struct GpuResult {
  std::vector<float> out, lse, dqkv;  // dqkv: empty without the backward
  std::vector<bf16> out_raw, dqkv_raw;
  std::vector<float> lse_raw;
};

// The two implementations of the same contract: mindllm's flash kernels and cuDNN's.
enum class Impl { flash, cudnn };

GpuResult run_gpu(const FlashData& a, bool with_backward, Impl impl = Impl::flash) {
  auto qkv = dev(to_bf16(a.qkv)), dout = dev(to_bf16(a.dout));
  auto out = poisoned<bf16>(a.out_size), grad = poisoned<bf16>(a.qkv_size);
  auto lse = poisoned<float>(a.stat_size), delta = poisoned<float>(a.stat_size);
  const bf16* p = qkv.data();
  bf16 *dq = grad.data() + a.q_off, *dk = grad.data() + a.k_off, *dv = grad.data() + a.v_off;
  AttentionShape s = a.s;
  auto seg = dev(a.seg_start.empty() ? std::vector<int32_t>{0} : a.seg_start);
  if (s.seg_start) s.seg_start = seg.data();
  if (impl == Impl::cudnn) {
    cuda::cudnn_attention_forward(out.data(), lse.data(), p + a.q_off, p + a.k_off, p + a.v_off, s);
    if (with_backward)
      cuda::cudnn_attention_backward(dq, dk, dv, dout.data(), out.data(), lse.data(), p + a.q_off, p + a.k_off,
                                     p + a.v_off, s);
  } else {
    cuda::flash_attention_forward(out.data(), lse.data(), p + a.q_off, p + a.k_off, p + a.v_off, s);
    if (with_backward)
      cuda::flash_attention_backward(dq, dk, dv, delta.data(), dout.data(), out.data(), lse.data(), p + a.q_off,
                                     p + a.k_off, p + a.v_off, s);
  }
  cuda::synchronize();
  GpuResult r;
  r.out_raw = out.download();
  r.lse_raw = lse.download();
  r.out = to_float(r.out_raw);
  r.lse = r.lse_raw;
  if (with_backward) {
    r.dqkv_raw = grad.download();
    r.dqkv = to_float(r.dqkv_raw);
  }
  return r;
}

// Relative error of the saved logsumexp against float64.
double lse_err(const std::vector<float>& got, const std::vector<double>& want) {
  std::vector<float> w(want.begin(), want.end());
  return rel_err(got, w);
}

// The cases an implementation takes: all for the flash kernels; for cuDNN those it has an engine
// for (each skipped one printed with cuDNN's reason).
std::vector<FlashCase> cases_for(Impl impl) {
  std::vector<FlashCase> out;
  for (const FlashCase& c : kCases) {
    std::string why;
    if (impl == Impl::cudnn && c.seg) continue;  // cuDNN takes no packed segments (CudaModel refuses it)
    if (impl == Impl::cudnn && !cuda::cudnn_attention_supported(shape_of(c), &why)) {
      std::printf("  cuDNN has no engine for %s: %s\n", describe(c).c_str(), why.c_str());
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// Each implementation under the same checks: mindllm's flash kernels wherever there is a GPU,
// cuDNN's fused attention (kernels/cuda/cudnn_attention.h) where this build and machine have it.
class FusedAttention : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_GPU();
    std::string why;
    if (GetParam() == Impl::cudnn && !cuda::cudnn_attention_available(&why)) GTEST_SKIP() << "no cuDNN: " << why;
  }
};

TEST_P(FusedAttention, ForwardMatchesCpu) {
  for (const FlashCase& c : cases_for(GetParam())) {
    SCOPED_TRACE(describe(c));
    FlashData a = make_case(c, false);
    GpuResult g = run_gpu(a, false, GetParam());
    EXPECT_CLOSE(g.out, a.out, kBf16Tol);
    const double e = lse_err(g.lse, a.lse);  // fp32 scores and sums: far tighter than bf16
    record_err(e);
    EXPECT_LE(e, 1e-4) << "logsumexp: max rel err " << e;
  }
}

TEST_P(FusedAttention, BackwardMatchesCpu) {
  for (const FlashCase& c : cases_for(GetParam())) {
    SCOPED_TRACE(describe(c));
    FlashData a = make_case(c, true);
    GpuResult g = run_gpu(a, true, GetParam());
    // Columns between rows' heads (gap) are no gradient: they must keep their poison.
    size_t touched = 0;
    for (size_t i = 0; i < a.qkv_size; i++)
      if (a.gap_mask[i]) {
        touched += !std::isnan(g.dqkv[i]);
        g.dqkv[i] = 0.0f;
      }
    EXPECT_EQ(touched, 0u) << "the backward wrote outside dq/dk/dv";
    if (!c.packed) {  // separate buffers: dq, dk, dv each on its own scale
      std::vector<float> dq_g(g.dqkv.begin(), g.dqkv.begin() + a.k_off);
      std::vector<float> dq_c(a.dqkv.begin(), a.dqkv.begin() + a.k_off);
      std::vector<float> dk_g(g.dqkv.begin() + a.k_off, g.dqkv.begin() + a.v_off);
      std::vector<float> dk_c(a.dqkv.begin() + a.k_off, a.dqkv.begin() + a.v_off);
      std::vector<float> dv_g(g.dqkv.begin() + a.v_off, g.dqkv.end()), dv_c(a.dqkv.begin() + a.v_off, a.dqkv.end());
      EXPECT_CLOSE(dq_g, dq_c, kBf16Tol);
      EXPECT_CLOSE(dk_g, dk_c, kBf16Tol);
      EXPECT_CLOSE(dv_g, dv_c, kBf16Tol);
    }
    EXPECT_CLOSE(g.dqkv, a.dqkv, kBf16Tol);  // every element written
  }
}

TEST_P(FusedAttention, Deterministic) {
  for (const FlashCase& c : cases_for(GetParam())) {
    if (c.T < 128) continue;  // the multi-block cases
    SCOPED_TRACE(describe(c));
    FlashData a = make_case(c, false);
    GpuResult first = run_gpu(a, true, GetParam()), second = run_gpu(a, true, GetParam());
    EXPECT_TRUE(same_bytes(first.out_raw, second.out_raw)) << "forward: out differs";
    EXPECT_TRUE(same_bytes(first.lse_raw, second.lse_raw)) << "forward: lse differs";
    EXPECT_TRUE(same_bytes(first.dqkv_raw, second.dqkv_raw)) << "backward not deterministic";
  }
}

INSTANTIATE_TEST_SUITE_P(Impls, FusedAttention, ::testing::Values(Impl::flash, Impl::cudnn),
                         [](const ::testing::TestParamInfo<Impl>& i) {
                           return std::string(i.param == Impl::flash ? "flash" : "cudnn");
                         });

// The model's shapes (packed rows with no gap, causal, with and without GQA, D 64 and 128) must
// have a cuDNN engine.
TEST(CudnnAttention, ModelShapesAreSupported) {
  SKIP_WITHOUT_GPU();
  std::string why;
  if (!cuda::cudnn_attention_available(&why)) GTEST_SKIP() << "no cuDNN: " << why;
  for (const FlashCase& c : kCases) {
    if (!c.packed || c.gap || c.window) continue;
    EXPECT_TRUE(cuda::cudnn_attention_supported(shape_of(c), &why)) << describe(c) << ": " << why;
  }
}

TEST(CudaFlashAttention, UnsupportedHeadDimIsAnError) {
  SKIP_WITHOUT_GPU();
  AttentionShape s{1, 8, 2, 2, 96, 192, 192, 192, 192, 0.1f, 0};
  EXPECT_FALSE(cuda::flash_attention_supported(s));
  cuda::DeviceBuffer<bf16> x(8 * 192);
  cuda::DeviceBuffer<float> lse(16);
  try {
    cuda::flash_attention_forward(x.data(), lse.data(), x.data(), x.data(), x.data(), s);
    ADD_FAILURE() << "no error for D = 96";
  } catch (const Error& e) { EXPECT_NE(std::string(e.what()).find("D=96"), std::string::npos) << e.what(); }
  s.D = 64;
  EXPECT_TRUE(cuda::flash_attention_supported(s));
}

}  // namespace
}  // namespace mindllm
