// Causal attention on the GPU against the CPU op (probabilities against float64): full heads, GQA, GPT-Neo's local windows with
// unscaled scores, separate and packed (strided) q/k/v, head dims 64 and 128, odd T.
#include "cuda_test_util.h"
#include "kernels/cpu/attention.h"
#include "kernels/cuda/attention.h"

namespace mindllm {
namespace {

using namespace cudatest;
using cpu::AttentionShape;

struct AttnCase {
  int B, T, Hq, Hkv, D;
  bool packed;  // q, k, v inside one [B*T, (Hq + 2 Hkv) D] buffer (the model's qkv layout)
  float scale;  // 0: 1/sqrt(D)
  int window;
  float input_scale;
};
const AttnCase kAttnCases[] = {
    {2, 77, 4, 4, 64, false, 0.0f, 0, 1.0f},   // MHA, T not a multiple of any tile
    {1, 100, 8, 2, 128, true, 0.0f, 0, 1.0f},  // GQA 4:1, packed qkv, head dim 128
    {2, 65, 4, 1, 64, true, 1.0f, 16, 0.3f},   // MQA, local window 16, unscaled (GPT-Neo)
    {1, 33, 6, 3, 64, false, 0.0f, 256, 1.0f},  // window longer than T = global
};

// Buffers of one case: q, k, v (and dout, out) with the case's strides; packed cases keep q, k, v
// at offsets 0, Hq D, (Hq + Hkv) D of one row.
struct AttnData {
  AttentionShape s;
  size_t q_off, k_off, v_off, qkv_size, out_size;
  std::vector<float> qkv, dout;
};

AttnData make_case(const AttnCase& c, Rng& rng) {
  AttnData a;
  const int N = c.B * c.T, Q = c.Hq * c.D, KV = c.Hkv * c.D;
  const float scale = c.scale > 0 ? c.scale : 1.0f / std::sqrt((float)c.D);
  if (c.packed) {
    const int ld = Q + 2 * KV;
    a.s = AttentionShape{c.B, c.T, c.Hq, c.Hkv, c.D, ld, ld, ld, Q, scale, c.window};
    a.q_off = 0, a.k_off = Q, a.v_off = Q + KV, a.qkv_size = (size_t)N * ld;
  } else {
    a.s = AttentionShape{c.B, c.T, c.Hq, c.Hkv, c.D, Q, KV, KV, Q, scale, c.window};
    a.q_off = 0, a.k_off = (size_t)N * Q, a.v_off = a.k_off + (size_t)N * KV, a.qkv_size = a.v_off + (size_t)N * KV;
  }
  a.out_size = (size_t)N * Q;
  a.qkv = random_normal(a.qkv_size, rng, c.input_scale);
  a.dout = random_normal(a.out_size, rng);
  return a;
}

// The softmax probabilities [B, Hq, T, T] of a case in float64 (the CPU op does not store them),
// 0 above the diagonal and outside the window: what the GPU's unfused attention saves.
std::vector<float> ref_probs(const AttnData& a) {
  const AttentionShape& s = a.s;
  std::vector<float> P((size_t)s.B * s.Hq * s.T * s.T, 0.0f);
  std::vector<double> row;
  double lse;
  for (int b = 0; b < s.B; b++)
    for (int h = 0; h < s.Hq; h++)
      for (int t = 0; t < s.T; t++) {
        const int lo = ref_softmax_row(row, lse, a.qkv.data() + a.q_off, a.qkv.data() + a.k_off, s, b, h, t);
        float* p = P.data() + (((size_t)b * s.Hq + h) * s.T + t) * s.T;
        for (int j = lo; j <= t; j++) p[j] = (float)row[j];
      }
  return P;
}

template <typename T>
void run_gpu(const AttnData& a, const DeviceBuffer<T>& qkv, const DeviceBuffer<T>& dout, DeviceBuffer<T>& out,
             DeviceBuffer<float>& probs, DeviceBuffer<T>& dqkv, DeviceBuffer<float>& scratch) {
  cuda::attention_forward(out.data(), probs.data(), qkv.data() + a.q_off, qkv.data() + a.k_off, qkv.data() + a.v_off,
                          a.s);
  cuda::attention_backward(dqkv.data() + a.q_off, dqkv.data() + a.k_off, dqkv.data() + a.v_off, scratch.data(),
                           dout.data(), probs.data(), qkv.data() + a.q_off, qkv.data() + a.k_off,
                           qkv.data() + a.v_off, a.s);
}

TEST(CudaAttention, Fp32MatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const AttnCase& c : kAttnCases) {
    SCOPED_TRACE(::testing::Message() << "B=" << c.B << " T=" << c.T << " Hq=" << c.Hq << " Hkv=" << c.Hkv
                                      << " D=" << c.D << " packed=" << c.packed << " window=" << c.window);
    Rng rng(c.T * 31 + c.Hq * 7 + c.D);
    AttnData a = make_case(c, rng);
    const size_t PT = (size_t)c.B * c.Hq * c.T * c.T;
    std::vector<float> out(a.out_size), stats((size_t)c.B * c.Hq * c.T * cpu::kAttentionStats),
        dqkv(a.qkv_size, 0.0f);
    const float* q = a.qkv.data();
    cpu::attention_forward(out.data(), stats.data(), q + a.q_off, q + a.k_off, q + a.v_off, a.s);
    cpu::attention_backward(dqkv.data() + a.q_off, dqkv.data() + a.k_off, dqkv.data() + a.v_off, a.dout.data(),
                            stats.data(), q + a.q_off, q + a.k_off, q + a.v_off, a.s);
    const std::vector<float> probs = ref_probs(a);

    auto dq = dev(a.qkv), ddout = dev(a.dout);
    std::vector<float> first;
    for (int rep = 0; rep < 2; rep++) {
      auto dout_ = poisoned<float>(a.out_size), dprobs = poisoned<float>(PT), dgrad = poisoned<float>(a.qkv_size),
           dscratch = poisoned<float>(PT);
      run_gpu(a, dq, ddout, dout_, dprobs, dgrad, dscratch);
      auto grad = dgrad.download();
      if (rep == 0) {
        EXPECT_CLOSE(dout_.download(), out, kF32Tol);
        EXPECT_CLOSE(dprobs.download(), probs, kF32Tol);  // zeros above the diagonal / outside the window
        EXPECT_CLOSE(grad, dqkv, kF32Tol);                // dq, dk, dv: every element written
        first = grad;
      } else {
        EXPECT_TRUE(same_bytes(grad, first)) << "attention_backward not deterministic";
      }
    }
  }
}

TEST(CudaAttention, Bf16MatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const AttnCase& c : kAttnCases) {
    SCOPED_TRACE(::testing::Message() << "B=" << c.B << " T=" << c.T << " Hq=" << c.Hq << " Hkv=" << c.Hkv
                                      << " D=" << c.D << " packed=" << c.packed << " window=" << c.window);
    Rng rng(c.T * 17 + c.Hkv);
    AttnData a = make_case(c, rng);
    a.qkv = round_bf16(a.qkv);
    a.dout = round_bf16(a.dout);
    const size_t PT = (size_t)c.B * c.Hq * c.T * c.T;
    std::vector<float> out(a.out_size), stats((size_t)c.B * c.Hq * c.T * cpu::kAttentionStats),
        dqkv(a.qkv_size, 0.0f);
    const float* q = a.qkv.data();
    cpu::attention_forward(out.data(), stats.data(), q + a.q_off, q + a.k_off, q + a.v_off, a.s);
    cpu::attention_backward(dqkv.data() + a.q_off, dqkv.data() + a.k_off, dqkv.data() + a.v_off, a.dout.data(),
                            stats.data(), q + a.q_off, q + a.k_off, q + a.v_off, a.s);
    const std::vector<float> probs = ref_probs(a);

    auto dq = dev(to_bf16(a.qkv)), ddout = dev(to_bf16(a.dout));
    auto dout_ = poisoned<bf16>(a.out_size), dgrad = poisoned<bf16>(a.qkv_size);
    auto dprobs = poisoned<float>(PT), dscratch = poisoned<float>(PT);
    run_gpu(a, dq, ddout, dout_, dprobs, dgrad, dscratch);
    EXPECT_CLOSE(to_float(dout_.download()), out, kBf16Tol);
    EXPECT_CLOSE(dprobs.download(), probs, 1e-4);  // fp32 softmax of the same (bf16) inputs
    EXPECT_CLOSE(to_float(dgrad.download()), dqkv, kBf16Tol);
  }
}

}  // namespace
}  // namespace mindllm
