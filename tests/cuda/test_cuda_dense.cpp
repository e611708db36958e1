// Linear (cuBLASLt), LayerNorm/RMSNorm and embeddings on the GPU against the CPU ops.
#include "cuda_test_util.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/norm.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/linear.h"
#include "kernels/cuda/norm.h"

namespace mindllm {
namespace {

using namespace cudatest;
using cpu::WeightLayout;

struct LinearCase {
  int N, I, O;
  WeightLayout layout;
  bool bias;
};
// Odd sizes (no tile divides them), both weight layouts, with and without bias.
const LinearCase kLinearCases[] = {{37, 65, 131, WeightLayout::out_in, true},
                                   {37, 65, 131, WeightLayout::in_out, true},
                                   {128, 256, 200, WeightLayout::out_in, false},
                                   {5, 64, 1000, WeightLayout::in_out, false},
                                   {300, 96, 384, WeightLayout::out_in, true}};

TEST(CudaLinear, Fp32MatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const LinearCase& c : kLinearCases) {
    SCOPED_TRACE(::testing::Message() << "N=" << c.N << " I=" << c.I << " O=" << c.O << " layout="
                                      << (c.layout == WeightLayout::out_in ? "out_in" : "in_out") << " bias=" << c.bias);
    Rng rng(c.N * 7 + c.I);
    const size_t NI = (size_t)c.N * c.I, NO = (size_t)c.N * c.O, W = (size_t)c.I * c.O;
    auto x = random_normal(NI, rng), w = random_normal(W, rng, 0.2f), b = random_normal(c.O, rng);
    auto dy = random_normal(NO, rng);
    auto gx0 = random_normal(NI, rng), gw0 = random_normal(W, rng), gb0 = random_normal(c.O, rng);

    std::vector<float> out(NO), gx = gx0, gw = gw0, gb = gb0;
    cpu::linear_forward(out.data(), x.data(), w.data(), c.bias ? b.data() : nullptr, c.N, c.I, c.O, c.layout);
    cpu::linear_backward(gx.data(), gw.data(), c.bias ? gb.data() : nullptr, dy.data(), x.data(), w.data(), c.N, c.I,
                         c.O, c.layout);

    auto dx = dev(x), dw = dev(w), db = dev(b), ddy = dev(dy);
    auto dout = poisoned<float>(NO);
    cuda::linear_forward(dout.data(), dx.data(), dw.data(), c.bias ? db.data() : nullptr, c.N, c.I, c.O, c.layout);
    EXPECT_CLOSE(dout.download(), out, kF32Tol);
    if (c.bias) {  // a bias 4 bytes into a buffer (as in a flat parameter buffer): no BIAS epilogue
      std::vector<float> b1(c.O + 1, 0.0f);
      for (int o = 0; o < c.O; o++) b1[o + 1] = b[o];
      auto db1 = dev(b1);
      auto dout1 = poisoned<float>(NO);
      cuda::linear_forward(dout1.data(), dx.data(), dw.data(), db1.data() + 1, c.N, c.I, c.O, c.layout);
      EXPECT_CLOSE(dout1.download(), out, kF32Tol);
    }

    std::vector<float> first[3];
    for (int rep = 0; rep < 2; rep++) {
      auto dgx = dev(gx0), dgw = dev(gw0), dgb = dev(gb0);
      cuda::linear_backward(dgx.data(), dgw.data(), c.bias ? dgb.data() : nullptr, ddy.data(), dx.data(), dw.data(),
                            c.N, c.I, c.O, c.layout);
      std::vector<float> got[3] = {dgx.download(), dgw.download(), dgb.download()};
      if (rep == 0) {
        EXPECT_CLOSE(got[0], gx, kF32Tol);
        EXPECT_CLOSE(got[1], gw, kF32Tol);
        EXPECT_CLOSE(got[2], gb, kF32Tol);
        for (int i = 0; i < 3; i++) first[i] = got[i];
      } else {
        for (int i = 0; i < 3; i++) EXPECT_TRUE(same_bytes(got[i], first[i])) << "linear_backward not deterministic";
      }
    }
    // Null gradients are skipped.
    auto dgx = dev(gx0);
    cuda::linear_backward(dgx.data(), nullptr, nullptr, ddy.data(), dx.data(), dw.data(), c.N, c.I, c.O, c.layout);
    EXPECT_CLOSE(dgx.download(), gx, kF32Tol);
  }
}

TEST(CudaLinear, Bf16MatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const LinearCase& c : kLinearCases) {
    SCOPED_TRACE(::testing::Message() << "N=" << c.N << " I=" << c.I << " O=" << c.O << " bias=" << c.bias);
    Rng rng(c.N * 11 + c.O);
    const size_t NI = (size_t)c.N * c.I, NO = (size_t)c.N * c.O, W = (size_t)c.I * c.O;
    auto x = round_bf16(random_normal(NI, rng)), w = round_bf16(random_normal(W, rng, 0.2f));
    auto b = round_bf16(random_normal(c.O, rng)), dy = round_bf16(random_normal(NO, rng));
    auto gx0 = round_bf16(random_normal(NI, rng)), gw0 = random_normal(W, rng), gb0 = random_normal(c.O, rng);

    std::vector<float> out(NO), gx = gx0, gw = gw0, gb = gb0;
    cpu::linear_forward(out.data(), x.data(), w.data(), c.bias ? b.data() : nullptr, c.N, c.I, c.O, c.layout);
    cpu::linear_backward(gx.data(), gw.data(), c.bias ? gb.data() : nullptr, dy.data(), x.data(), w.data(), c.N, c.I,
                         c.O, c.layout);

    auto dx = dev(to_bf16(x)), dw = dev(to_bf16(w)), db = dev(to_bf16(b)), ddy = dev(to_bf16(dy));
    auto dout = poisoned<bf16>(NO);
    cuda::linear_forward(dout.data(), dx.data(), dw.data(), c.bias ? db.data() : nullptr, c.N, c.I, c.O, c.layout);
    EXPECT_CLOSE(to_float(dout.download()), out, kBf16Tol);
    if (c.bias) {  // a bias 2 bytes into a buffer: no BIAS epilogue
      std::vector<float> b1(c.O + 1, 0.0f);
      for (int o = 0; o < c.O; o++) b1[o + 1] = b[o];
      auto db1 = dev(to_bf16(b1));
      auto dout1 = poisoned<bf16>(NO);
      cuda::linear_forward(dout1.data(), dx.data(), dw.data(), db1.data() + 1, c.N, c.I, c.O, c.layout);
      EXPECT_CLOSE(to_float(dout1.download()), out, kBf16Tol);
    }

    auto dgx = dev(to_bf16(gx0));
    auto dgw = dev(gw0), dgb = dev(gb0);
    cuda::linear_backward(dgx.data(), dgw.data(), c.bias ? dgb.data() : nullptr, ddy.data(), dx.data(), dw.data(), c.N,
                          c.I, c.O, c.layout);
    EXPECT_CLOSE(to_float(dgx.download()), gx, kBf16Tol);
    EXPECT_CLOSE(dgw.download(), gw, kBf16Tol);
    EXPECT_CLOSE(dgb.download(), gb, kBf16Tol);
  }
}

struct NormCase {
  int N, C;
  bool rms, bias;
};
const NormCase kNormCases[] = {{37, 768, false, true}, {37, 1000, false, false}, {64, 4096, false, true},
                               {37, 1000, true, false}, {5, 2048, true, false}};

TEST(CudaNorm, Fp32MatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const NormCase& c : kNormCases) {
    SCOPED_TRACE(::testing::Message() << (c.rms ? "rmsnorm" : "layernorm") << " N=" << c.N << " C=" << c.C);
    Rng rng(c.N + c.C);
    const size_t NC = (size_t)c.N * c.C;
    auto x = random_normal(NC, rng, 2.0f), w = random_normal(c.C, rng), b = random_normal(c.C, rng);
    for (int n = 0; n < c.N; n++)  // rows with an offset: LayerNorm must centre them
      for (int i = 0; i < c.C; i++) x[(size_t)n * c.C + i] += 0.5f * (n % 5);
    auto dy = random_normal(NC, rng), gx0 = random_normal(NC, rng), gw0 = random_normal(c.C, rng),
         gb0 = random_normal(c.C, rng);
    const float eps = 1e-5f;
    const float* bias = c.bias ? b.data() : nullptr;

    std::vector<float> out(NC), mean(c.N), rstd(c.N), gx = gx0, gw = gw0, gb = gb0;
    if (c.rms) {
      cpu::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), c.N, c.C, eps);
      cpu::rmsnorm_backward(gx.data(), gw.data(), dy.data(), x.data(), w.data(), rstd.data(), c.N, c.C);
    } else {
      cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), bias, c.N, c.C, eps);
      cpu::layernorm_backward(gx.data(), gw.data(), c.bias ? gb.data() : nullptr, dy.data(), x.data(), w.data(),
                              mean.data(), rstd.data(), c.N, c.C);
    }

    auto dx = dev(x), dw = dev(w), db = dev(b), ddy = dev(dy);
    auto dout = poisoned<float>(NC), dmean = poisoned<float>(c.N), drstd = poisoned<float>(c.N);
    if (c.rms)
      cuda::rmsnorm_forward(dout.data(), drstd.data(), dx.data(), dw.data(), c.N, c.C, eps);
    else
      cuda::layernorm_forward(dout.data(), dmean.data(), drstd.data(), dx.data(), dw.data(), bias ? db.data() : nullptr,
                              c.N, c.C, eps);
    EXPECT_CLOSE(dout.download(), out, kF32Tol);
    EXPECT_CLOSE(drstd.download(), rstd, kF32Tol);
    if (!c.rms) EXPECT_CLOSE(dmean.download(), mean, kF32Tol);

    // Backward from the CPU's saved statistics, twice: same bytes.
    auto cmean = dev(mean), crstd = dev(rstd);
    std::vector<float> first[3];
    for (int rep = 0; rep < 2; rep++) {
      auto dgx = dev(gx0), dgw = dev(gw0), dgb = dev(gb0);
      if (c.rms)
        cuda::rmsnorm_backward(dgx.data(), dgw.data(), ddy.data(), dx.data(), dw.data(), crstd.data(), c.N, c.C);
      else
        cuda::layernorm_backward(dgx.data(), dgw.data(), c.bias ? dgb.data() : nullptr, ddy.data(), dx.data(),
                                 dw.data(), cmean.data(), crstd.data(), c.N, c.C);
      std::vector<float> got[3] = {dgx.download(), dgw.download(), dgb.download()};
      if (rep == 0) {
        EXPECT_CLOSE(got[0], gx, kF32Tol);
        EXPECT_CLOSE(got[1], gw, kF32Tol);
        EXPECT_CLOSE(got[2], gb, kF32Tol);
        for (int i = 0; i < 3; i++) first[i] = got[i];
      } else {
        for (int i = 0; i < 3; i++) EXPECT_TRUE(same_bytes(got[i], first[i])) << "norm backward not deterministic";
      }
    }
  }
}

TEST(CudaNorm, Bf16MatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const NormCase& c : kNormCases) {
    SCOPED_TRACE(::testing::Message() << (c.rms ? "rmsnorm" : "layernorm") << " N=" << c.N << " C=" << c.C);
    Rng rng(c.N * 3 + c.C);
    const size_t NC = (size_t)c.N * c.C;
    auto x = round_bf16(random_normal(NC, rng, 2.0f)), w = round_bf16(random_normal(c.C, rng));
    auto b = round_bf16(random_normal(c.C, rng)), dy = round_bf16(random_normal(NC, rng));
    auto gx0 = round_bf16(random_normal(NC, rng)), gw0 = random_normal(c.C, rng), gb0 = random_normal(c.C, rng);
    const float eps = 1e-5f;

    std::vector<float> out(NC), mean(c.N), rstd(c.N), gx = gx0, gw = gw0, gb = gb0;
    if (c.rms) {
      cpu::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), c.N, c.C, eps);
      cpu::rmsnorm_backward(gx.data(), gw.data(), dy.data(), x.data(), w.data(), rstd.data(), c.N, c.C);
    } else {
      cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), c.bias ? b.data() : nullptr,
                             c.N, c.C, eps);
      cpu::layernorm_backward(gx.data(), gw.data(), c.bias ? gb.data() : nullptr, dy.data(), x.data(), w.data(),
                              mean.data(), rstd.data(), c.N, c.C);
    }
    auto dx = dev(to_bf16(x)), dw = dev(to_bf16(w)), db = dev(to_bf16(b)), ddy = dev(to_bf16(dy));
    auto dout = poisoned<bf16>(NC);
    auto dmean = poisoned<float>(c.N), drstd = poisoned<float>(c.N);
    if (c.rms)
      cuda::rmsnorm_forward(dout.data(), drstd.data(), dx.data(), dw.data(), c.N, c.C, eps);
    else
      cuda::layernorm_forward(dout.data(), dmean.data(), drstd.data(), dx.data(), dw.data(),
                              c.bias ? db.data() : nullptr, c.N, c.C, eps);
    EXPECT_CLOSE(to_float(dout.download()), out, kBf16Tol);
    EXPECT_CLOSE(drstd.download(), rstd, 1e-4);  // fp32 statistics of the same (bf16) inputs
    if (!c.rms) EXPECT_CLOSE(dmean.download(), mean, 1e-4);

    auto cmean = dev(mean), crstd = dev(rstd);
    auto dgx = dev(to_bf16(gx0));
    auto dgw = dev(gw0), dgb = dev(gb0);
    if (c.rms)
      cuda::rmsnorm_backward(dgx.data(), dgw.data(), ddy.data(), dx.data(), dw.data(), crstd.data(), c.N, c.C);
    else
      cuda::layernorm_backward(dgx.data(), dgw.data(), c.bias ? dgb.data() : nullptr, ddy.data(), dx.data(), dw.data(),
                               cmean.data(), crstd.data(), c.N, c.C);
    EXPECT_CLOSE(to_float(dgx.download()), gx, kBf16Tol);
    EXPECT_CLOSE(dgw.download(), gw, kBf16Tol);
    EXPECT_CLOSE(dgb.download(), gb, kBf16Tol);
  }
}

struct EmbCase {
  int B, T, C, V;
  bool wpe;
  int pos_offset;
};
// C not a multiple of the 128-channel tile, vocab not a multiple of 128, repeated tokens.
const EmbCase kEmbCases[] = {{3, 17, 96, 1000, true, 5}, {2, 33, 200, 50257, false, 0}, {4, 64, 768, 333, true, 0}};

TEST(CudaEmbedding, MatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const EmbCase& c : kEmbCases) {
    SCOPED_TRACE(::testing::Message() << "B=" << c.B << " T=" << c.T << " C=" << c.C << " V=" << c.V);
    Rng rng(c.C + c.V);
    const int N = c.B * c.T, P = c.T + c.pos_offset;
    std::vector<int32_t> tok(N);
    for (int i = 0; i < N; i++) tok[i] = (int32_t)(i % 3 == 0 ? rng.below(7) : rng.below(c.V));  // many repeats
    auto wte = random_normal((size_t)c.V * c.C, rng), wpe = random_normal((size_t)P * c.C, rng);
    auto dy = random_normal((size_t)N * c.C, rng);
    auto gte0 = random_normal((size_t)c.V * c.C, rng), gpe0 = random_normal((size_t)P * c.C, rng);

    std::vector<float> out((size_t)N * c.C), gte = gte0, gpe = gpe0;
    cpu::embedding_forward(out.data(), tok.data(), wte.data(), c.wpe ? wpe.data() : nullptr, c.B, c.T, c.C,
                           c.pos_offset);
    cpu::embedding_backward(gte.data(), c.wpe ? gpe.data() : nullptr, dy.data(), tok.data(), c.B, c.T, c.C,
                            c.pos_offset);

    auto dtok = dev(tok);
    auto dwte = dev(wte), dwpe = dev(wpe), ddy = dev(dy);
    auto dout = poisoned<float>((size_t)N * c.C);
    cuda::embedding_forward(dout.data(), dtok.data(), dwte.data(), c.wpe ? dwpe.data() : nullptr, c.B, c.T, c.C,
                            c.pos_offset);
    EXPECT_CLOSE(dout.download(), out, kF32Tol);

    std::vector<float> first[2];
    for (int rep = 0; rep < 2; rep++) {
      auto dgte = dev(gte0), dgpe = dev(gpe0);
      cuda::embedding_backward(dgte.data(), c.wpe ? dgpe.data() : nullptr, ddy.data(), dtok.data(), c.B, c.T, c.C,
                               c.pos_offset);
      std::vector<float> got[2] = {dgte.download(), dgpe.download()};
      if (rep == 0) {
        EXPECT_CLOSE(got[0], gte, kF32Tol);
        EXPECT_CLOSE(got[1], gpe, kF32Tol);
        // Each element gets the CPU's additions in the CPU's order: the same bytes.
        EXPECT_TRUE(same_bytes(got[0], gte));
        for (int i = 0; i < 2; i++) first[i] = got[i];
      } else {
        for (int i = 0; i < 2; i++) EXPECT_TRUE(same_bytes(got[i], first[i])) << "embedding_backward not deterministic";
      }
    }

    // bf16 activations/table, fp32 gradients.
    auto wte_b = round_bf16(wte), wpe_b = round_bf16(wpe), dy_b = round_bf16(dy);
    std::vector<float> out_b((size_t)N * c.C), gte_b = gte0, gpe_b = gpe0;
    cpu::embedding_forward(out_b.data(), tok.data(), wte_b.data(), c.wpe ? wpe_b.data() : nullptr, c.B, c.T, c.C,
                           c.pos_offset);
    cpu::embedding_backward(gte_b.data(), c.wpe ? gpe_b.data() : nullptr, dy_b.data(), tok.data(), c.B, c.T, c.C,
                            c.pos_offset);
    auto bwte = dev(to_bf16(wte_b)), bwpe = dev(to_bf16(wpe_b)), bdy = dev(to_bf16(dy_b));
    auto bout = poisoned<bf16>((size_t)N * c.C);
    cuda::embedding_forward(bout.data(), dtok.data(), bwte.data(), c.wpe ? bwpe.data() : nullptr, c.B, c.T, c.C,
                            c.pos_offset);
    EXPECT_CLOSE(to_float(bout.download()), out_b, kBf16Tol);
    auto dgte = dev(gte0), dgpe = dev(gpe0);
    cuda::embedding_backward(dgte.data(), c.wpe ? dgpe.data() : nullptr, bdy.data(), dtok.data(), c.B, c.T, c.C,
                             c.pos_offset);
    EXPECT_CLOSE(dgte.download(), gte_b, kF32Tol);
    EXPECT_CLOSE(dgpe.download(), gpe_b, kF32Tol);
  }
}

}  // namespace
}  // namespace mindllm
