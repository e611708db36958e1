// Activations, GLU, residual add, casts, RoPE and cross-entropy on the GPU against the CPU ops.
#include "cuda_test_util.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/cross_entropy.h"
#include "kernels/cuda/rope.h"

namespace mindllm {
namespace {

using namespace cudatest;
using cpu::Activation;

const Activation kActs[] = {Activation::gelu_tanh, Activation::gelu_erf, Activation::silu};
const char* act_name(Activation a) {
  return a == Activation::gelu_tanh ? "gelu_tanh" : a == Activation::gelu_erf ? "gelu_erf" : "silu";
}

TEST(CudaActivation, MatchesCpu) {
  SKIP_WITHOUT_GPU();
  const size_t n = 3 * 4097 + 5;
  for (Activation a : kActs) {
    SCOPED_TRACE(act_name(a));
    Rng rng(n + (int)a);
    auto x = random_normal(n, rng, 3.0f), dy = random_normal(n, rng), g0 = random_normal(n, rng);
    std::vector<float> y(n), g = g0;
    cpu::activation_forward(y.data(), x.data(), n, a);
    cpu::activation_backward(g.data(), dy.data(), x.data(), n, a);
    auto dx = dev(x), ddy = dev(dy), dg = dev(g0);
    auto out = poisoned<float>(n);
    cuda::activation_forward(out.data(), dx.data(), n, a);
    cuda::activation_backward(dg.data(), ddy.data(), dx.data(), n, a);
    EXPECT_CLOSE(out.download(), y, kF32Tol);
    EXPECT_CLOSE(dg.download(), g, kF32Tol);

    // bf16: the CPU op on the same bf16-rounded inputs.
    auto xb = round_bf16(x), dyb = round_bf16(dy), gb0 = round_bf16(g0);
    std::vector<float> yb(n), gb = gb0;
    cpu::activation_forward(yb.data(), xb.data(), n, a);
    cpu::activation_backward(gb.data(), dyb.data(), xb.data(), n, a);
    auto bx = dev(to_bf16(xb)), bdy = dev(to_bf16(dyb)), bg = dev(to_bf16(gb0));
    auto bout = poisoned<bf16>(n);
    cuda::activation_forward(bout.data(), bx.data(), n, a);
    cuda::activation_backward(bg.data(), bdy.data(), bx.data(), n, a);
    EXPECT_CLOSE(to_float(bout.download()), yb, kBf16Tol);
    EXPECT_CLOSE(to_float(bg.download()), gb, kBf16Tol);
  }
}

TEST(CudaGlu, MatchesCpuFusedAndSeparate) {
  SKIP_WITHOUT_GPU();
  const int N = 37, H = 129;
  for (Activation a : kActs)
    for (bool fused : {true, false}) {
      SCOPED_TRACE(::testing::Message() << act_name(a) << (fused ? " fused [N,2H]" : " separate"));
      Rng rng(N * H + (int)a * 2 + fused);
      const int ld = fused ? 2 * H : H;
      // fused: one [N,2H] buffer, up = gate + H; separate: two [N,H] buffers packed in one.
      const size_t total = fused ? (size_t)N * 2 * H : 2 * (size_t)N * H;
      const size_t up_off = fused ? (size_t)H : (size_t)N * H;
      auto gu = random_normal(total, rng, 2.0f), dy = random_normal((size_t)N * H, rng);
      std::vector<float> out((size_t)N * H), dgu(total, 0.0f);
      cpu::glu_forward(out.data(), gu.data(), gu.data() + up_off, N, H, ld, a);
      cpu::glu_backward(dgu.data(), dgu.data() + up_off, dy.data(), gu.data(), gu.data() + up_off, N, H, ld, a);

      auto dgu_in = dev(gu), ddy = dev(dy);
      auto dout = poisoned<float>((size_t)N * H), dgrad = poisoned<float>(total);
      cuda::glu_forward(dout.data(), dgu_in.data(), dgu_in.data() + up_off, N, H, ld, a);
      cuda::glu_backward(dgrad.data(), dgrad.data() + up_off, ddy.data(), dgu_in.data(), dgu_in.data() + up_off, N, H,
                         ld, a);
      EXPECT_CLOSE(dout.download(), out, kF32Tol);
      EXPECT_CLOSE(dgrad.download(), dgu, kF32Tol);  // every element written (poisoned first)

      auto gub = round_bf16(gu), dyb = round_bf16(dy);
      std::vector<float> outb((size_t)N * H), dgub(total, 0.0f);
      cpu::glu_forward(outb.data(), gub.data(), gub.data() + up_off, N, H, ld, a);
      cpu::glu_backward(dgub.data(), dgub.data() + up_off, dyb.data(), gub.data(), gub.data() + up_off, N, H, ld, a);
      auto bgu = dev(to_bf16(gub)), bdy = dev(to_bf16(dyb));
      auto bout = poisoned<bf16>((size_t)N * H), bgrad = poisoned<bf16>(total);
      cuda::glu_forward(bout.data(), bgu.data(), bgu.data() + up_off, N, H, ld, a);
      cuda::glu_backward(bgrad.data(), bgrad.data() + up_off, bdy.data(), bgu.data(), bgu.data() + up_off, N, H, ld,
                         a);
      EXPECT_CLOSE(to_float(bout.download()), outb, kBf16Tol);
      EXPECT_CLOSE(to_float(bgrad.download()), dgub, kBf16Tol);
    }
}

TEST(CudaElementwise, AddScaledAndCasts) {
  SKIP_WITHOUT_GPU();
  const size_t n = 100003;
  Rng rng(5);
  auto y0 = random_normal(n, rng), x = random_normal(n, rng);
  for (float alpha : {1.0f, 0.7f}) {
    std::vector<float> want(n);
    for (size_t i = 0; i < n; i++) want[i] = y0[i] + alpha * x[i];
    auto dy = dev(y0), dx = dev(x);
    cuda::add_scaled(dy.data(), dx.data(), alpha, n);
    EXPECT_CLOSE(dy.download(), want, kF32Tol);
    auto by = dev(to_bf16(y0)), bx = dev(to_bf16(x));
    cuda::add_scaled(by.data(), bx.data(), alpha, n);
    EXPECT_CLOSE(to_float(by.download()), want, kBf16Tol);
  }
  // fp32 -> bf16 rounds to nearest even exactly as core/dtype.h does; bf16 -> fp32 is exact.
  auto dx = dev(x);
  auto b = poisoned<bf16>(n);
  cuda::convert(b.data(), dx.data(), n);
  auto got = b.download();
  auto want = to_bf16(x);
  EXPECT_TRUE(same_bytes(got, want)) << "fp32 -> bf16 differs from float_to_bf16";
  auto f = poisoned<float>(n);
  cuda::convert(f.data(), b.data(), n);
  EXPECT_TRUE(same_bytes(f.download(), round_bf16(x)));
}

struct RopeCase {
  int B, T, H, head_dim, rot_dim, stride_heads, pos_offset;
  float theta;
  double tol;
};
// head dim 64 and 128, partial rotary, rows wider than the rotated heads (a packed qkv row), and
// a long position offset (tolerance: one ulp of inv_freq moves the angle by pos * 6e-8).
const RopeCase kRopeCases[] = {{2, 77, 4, 64, 64, 12, 0, 10000.0f, 1e-5},
                               {1, 50, 8, 128, 128, 8, 0, 1000000.0f, 1e-5},
                               {2, 33, 4, 64, 32, 6, 0, 10000.0f, 1e-5},
                               {1, 20, 2, 128, 128, 2, 4000, 10000.0f, 1e-3}};

TEST(CudaRope, MatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const RopeCase& c : kRopeCases) {
    SCOPED_TRACE(::testing::Message() << "T=" << c.T << " H=" << c.H << " head_dim=" << c.head_dim
                                      << " rot=" << c.rot_dim << " pos_offset=" << c.pos_offset);
    Rng rng(c.T * c.H + c.head_dim);
    const int stride = c.stride_heads * c.head_dim;
    const size_t n = (size_t)c.B * c.T * stride;
    auto x = random_normal(n, rng);
    // Rotate the heads that start one head into the row (as K sits after Q in a qkv row).
    const size_t off = c.stride_heads > c.H ? c.head_dim : 0;
    for (int dir = 0; dir < 2; dir++) {
      std::vector<float> want = x;
      auto d = dev(x);
      for (int rep = 0; rep < 2; rep++) {  // applied twice: composes (and catches a stale table)
        if (dir == 0) {
          cpu::rope_forward(want.data() + off, c.B, c.T, c.H, c.head_dim, stride, c.rot_dim, c.theta, c.pos_offset);
          cuda::rope_forward(d.data() + off, c.B, c.T, c.H, c.head_dim, stride, c.rot_dim, c.theta, c.pos_offset);
        } else {
          cpu::rope_backward(want.data() + off, c.B, c.T, c.H, c.head_dim, stride, c.rot_dim, c.theta, c.pos_offset);
          cuda::rope_backward(d.data() + off, c.B, c.T, c.H, c.head_dim, stride, c.rot_dim, c.theta, c.pos_offset);
        }
      }
      EXPECT_CLOSE(d.download(), want, c.tol);  // untouched parts of the rows compare equal too

      auto wb = round_bf16(x);
      auto db = dev(to_bf16(wb));
      if (dir == 0) {
        cpu::rope_forward(wb.data() + off, c.B, c.T, c.H, c.head_dim, stride, c.rot_dim, c.theta, c.pos_offset);
        cuda::rope_forward(db.data() + off, c.B, c.T, c.H, c.head_dim, stride, c.rot_dim, c.theta, c.pos_offset);
      } else {
        cpu::rope_backward(wb.data() + off, c.B, c.T, c.H, c.head_dim, stride, c.rot_dim, c.theta, c.pos_offset);
        cuda::rope_backward(db.data() + off, c.B, c.T, c.H, c.head_dim, stride, c.rot_dim, c.theta, c.pos_offset);
      }
      EXPECT_CLOSE(to_float(db.download()), wb, kBf16Tol);
    }
  }
}

TEST(CudaCrossEntropy, MatchesCpuWithIgnoredTargets) {
  SKIP_WITHOUT_GPU();
  for (int V : {1000, 50257, 64000}) {
    SCOPED_TRACE(::testing::Message() << "V=" << V);
    const int N = 37;
    Rng rng(V);
    auto logits = random_normal((size_t)N * V, rng, 3.0f);
    std::vector<int32_t> tgt(N);
    int count = 0;
    for (int i = 0; i < N; i++) {
      tgt[i] = (i % 4 == 1) ? -1 : (int32_t)rng.below(V);
      count += tgt[i] >= 0;
    }
    tgt[N - 1] = V - 1;  // the last logit of the row
    const float scale = 1.0f / count;
    std::vector<float> loss(N), grad((size_t)N * V);
    cpu::cross_entropy_forward(loss.data(), logits.data(), tgt.data(), N, V);
    cpu::cross_entropy_backward(grad.data(), logits.data(), tgt.data(), scale, N, V);

    auto dl = dev(logits);
    auto dt = dev(tgt);
    auto dloss = poisoned<float>(N), dgrad = poisoned<float>((size_t)N * V);
    cuda::cross_entropy_forward(dloss.data(), dl.data(), dt.data(), N, V);
    cuda::cross_entropy_backward(dgrad.data(), dl.data(), dt.data(), scale, N, V);
    EXPECT_CLOSE(dloss.download(), loss, kF32Tol);
    EXPECT_CLOSE(dgrad.download(), grad, kF32Tol);
    // In place over the logits, as the model calls it.
    cuda::cross_entropy_backward(dl.data(), dl.data(), dt.data(), scale, N, V);
    EXPECT_CLOSE(dl.download(), grad, kF32Tol);

    // bf16 logits (fp32 losses, bf16 gradient), in place.
    auto lb = round_bf16(logits);
    std::vector<float> lossb(N), gradb((size_t)N * V);
    cpu::cross_entropy_forward(lossb.data(), lb.data(), tgt.data(), N, V);
    cpu::cross_entropy_backward(gradb.data(), lb.data(), tgt.data(), scale, N, V);
    auto bl = dev(to_bf16(lb));
    auto bloss = poisoned<float>(N);
    cuda::cross_entropy_forward(bloss.data(), bl.data(), dt.data(), N, V);
    cuda::cross_entropy_backward(bl.data(), bl.data(), dt.data(), scale, N, V);
    EXPECT_CLOSE(bloss.download(), lossb, 1e-5);  // fp32 math on the same inputs
    EXPECT_CLOSE(to_float(bl.download()), gradb, kBf16Tol);
  }
}

}  // namespace
}  // namespace mindllm
