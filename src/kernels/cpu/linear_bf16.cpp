#include "kernels/cpu/linear_bf16.h"

#include <cstring>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/profile.h"
#include "kernels/cpu/vec_math.h"

#if MINDLLM_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace mindllm::cpu {

MINDLLM_SIMD_CLONES
static void round_range(uint16_t* out, const float* in, size_t n) {
  // core/dtype.h's float_to_bf16 without the NaN branch, so the loop vectorizes; NaNs are
  // handled after it (a quiet NaN stays NaN either way, but the carry could reach infinity).
  bool nan = false;
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    std::memcpy(&u, in + i, 4);
    nan |= (u & 0x7fffffffu) > 0x7f800000u;
    out[i] = static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
  if (nan)
    for (size_t i = 0; i < n; i++)
      if (in[i] != in[i]) out[i] = float_to_bf16(in[i]);
}

void round_to_bf16(uint16_t* out, const float* in, size_t n) {
  parallel_ranges(n, size_t(1) << 16, [&](size_t b, size_t e) { round_range(out + b, in + b, e - b); });
}

#if MINDLLM_DNNL

namespace {

using dnnl::memory;

// A strided view of a bf16 matrix: element (r, c) at data[r * rs + c * cs].
struct View {
  const uint16_t* data;
  memory::dim rs, cs;
};

struct Matmul {
  dnnl::matmul prim;
  memory::desc a, b, c;
};

struct Engine {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};
  // One matmul primitive per shape, strides and accumulate flag, created on first use.
  using Key =
      std::tuple<memory::dim, memory::dim, memory::dim, memory::dim, memory::dim, memory::dim, memory::dim, bool>;
  std::map<Key, Matmul> cache;
  std::string impl;  // oneDNN's implementation name for the last primitive created
};

Engine& engine() {
  static Engine e;
  return e;
}

Matmul make_matmul(Engine& e, memory::dim M, memory::dim N, memory::dim K, const View& a, const View& b,
                   bool accumulate) {
  memory::desc ad({M, K}, memory::data_type::bf16, memory::dims{a.rs, a.cs});
  memory::desc bd({K, N}, memory::data_type::bf16, memory::dims{b.rs, b.cs});
  memory::desc cd({M, N}, memory::data_type::f32, memory::dims{N, 1});
  dnnl::primitive_attr attr;
  if (accumulate) {
    dnnl::post_ops po;
    po.append_sum(1.0f);
    attr.set_post_ops(po);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, bd, cd), attr, e.eng);
  e.impl = pd.impl_info_str();
  return Matmul{dnnl::matmul(pd), ad, bd, cd};
}

// c[M,N] (row-major fp32) = a[M,K] · b[K,N], or += with accumulate; fp32 accumulation.
void gemm(float* c, const View& a, const View& b, int M, int N, int K, bool accumulate) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate) std::memset(c, 0, sizeof(float) * M * N);
    return;
  }
  Engine& e = engine();
  try {
    Engine::Key key{M, N, K, a.rs, a.cs, b.rs, b.cs, accumulate};
    auto it = e.cache.find(key);
    if (it == e.cache.end()) it = e.cache.emplace(key, make_matmul(e, M, N, K, a, b, accumulate)).first;
    const Matmul& m = it->second;
    memory am(m.a, e.eng, const_cast<uint16_t*>(a.data));
    memory bm(m.b, e.eng, const_cast<uint16_t*>(b.data));
    memory cm(m.c, e.eng, c);
    m.prim.execute(e.stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    e.stream.wait();
  } catch (const dnnl::error& err) {
    internal_error(std::string("oneDNN bf16 matmul ") + std::to_string(M) + "x" + std::to_string(N) + "x" +
                   std::to_string(K) + ": " + err.what());
  }
}

// Scratch for the rounded activations and gradients (grows, never shrinks).
uint16_t* scratch(std::vector<uint16_t>& buf, size_t n) {
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}
thread_local std::vector<uint16_t> scratch_a, scratch_b;

// One probe per process: a 64 x 64 x 64 bf16 GEMM; the reason it cannot run (empty: it can) and
// the oneDNN implementation that ran it.
struct Probe {
  std::string reason, impl;
};

const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    try {
      Engine& e = engine();
      std::vector<uint16_t> a(64 * 64, 0x3f80), b(64 * 64, 0x3f80);
      std::vector<float> c(64 * 64);
      gemm(c.data(), View{a.data(), 64, 1}, View{b.data(), 64, 1}, 64, 64, 64, false);
      r.impl = e.impl;
      if (c[0] != 64.0f) r.reason = "oneDNN bf16 matmul gave a wrong result";
      // oneDNN's reference kernels run everywhere, but at a few GFLOP/s: not a training path.
      else if (r.impl.rfind("ref", 0) == 0)
        r.reason = "this CPU has no bf16 or AVX-512 matrix unit for oneDNN (implementation '" + r.impl + "')";
    } catch (const std::exception& ex) {
      r.reason = std::string("oneDNN has no bf16 matrix multiply for this CPU (it needs AVX-512): ") + ex.what();
    }
    return r;
  }();
  return p;
}

}  // namespace

bool bf16_gemm_available(std::string* why) {
  const Probe& p = probe();
  if (why) *why = p.reason.empty() ? "oneDNN " + p.impl : p.reason;
  return p.reason.empty();
}

bool bf16_gemm_uses_amx() { return bf16_gemm_available() && probe().impl.find("amx") != std::string::npos; }

void linear_forward_bf16(float* out, const float* inp, const uint16_t* weight, const float* bias, int N, int I, int O,
                         WeightLayout layout) {
  PROFILE("linear_fwd");
  uint16_t* a = scratch(scratch_a, (size_t)N * I);
  round_to_bf16(a, inp, (size_t)N * I);
  if (bias) broadcast_bias(out, bias, N, O);
  // W as a [I, O] view: W^T of an [O, I] matrix, or W itself.
  View w = layout == WeightLayout::out_in ? View{weight, 1, I} : View{weight, O, 1};
  gemm(out, View{a, I, 1}, w, N, O, I, bias != nullptr);
}

void linear_backward_bf16(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                          const uint16_t* weight, int N, int I, int O, WeightLayout layout) {
  PROFILE("linear_bwd");
  uint16_t* d = scratch(scratch_b, (size_t)N * O);
  round_to_bf16(d, dout, (size_t)N * O);
  if (dinp) {  // dinp[N,I] = dout[N,O] · W as an [O, I] view
    View w = layout == WeightLayout::out_in ? View{weight, I, 1} : View{weight, 1, O};
    gemm(dinp, View{d, O, 1}, w, N, I, O, false);
  }
  if (dweight) {
    uint16_t* a = scratch(scratch_a, (size_t)N * I);
    round_to_bf16(a, inp, (size_t)N * I);
    if (layout == WeightLayout::out_in)  // dW[O,I] += dout^T[O,N] · inp[N,I]
      gemm(dweight, View{d, 1, O}, View{a, I, 1}, O, I, N, true);
    else  // dW[I,O] += inp^T[I,N] · dout[N,O]
      gemm(dweight, View{a, 1, I}, View{d, O, 1}, I, O, N, true);
  }
  if (dbias) bias_backward(dbias, dout, N, O);
}

#else  // built without oneDNN

bool bf16_gemm_uses_amx() { return false; }

bool bf16_gemm_available(std::string* why) {
  if (why) *why = "this build has no oneDNN (install libdnnl-dev and rebuild)";
  return false;
}

static void unavailable() {
  std::string why;
  bf16_gemm_available(&why);
  bad_input("bf16 matrix multiply is not available: " + why);
}

void linear_forward_bf16(float*, const float*, const uint16_t*, const float*, int, int, int, WeightLayout) {
  unavailable();
}

void linear_backward_bf16(float*, float*, float*, const float*, const float*, const uint16_t*, int, int, int,
                          WeightLayout) {
  unavailable();
}

#endif

}  // namespace mindllm::cpu
