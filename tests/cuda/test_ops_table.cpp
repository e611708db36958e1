// The op-case table (tests/ops/op_cases.h) on the GPU: every case in fp32 and in bf16 against
// the CPU op on the same inputs (bf16: the same bf16-rounded inputs), outputs poisoned first so
// unwritten elements show, and every case run twice for the same bytes (fixed-order reductions).
#include "../ops/op_cases.h"
#include "cuda_test_util.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/adamw.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_paged.h"
#include "kernels/cuda/cross_entropy.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/linear.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/rope.h"

namespace mindllm {
namespace {

using namespace cudatest;
using namespace ops;

// The GPU backend for op_cases.h: device buffers; activations T (float or bf16), optimizer state,
// statistics and parameter gradients fp32.
template <class T>
struct CudaBackend {
  using A = T;
  static constexpr bool is_bf16 = std::is_same_v<T, bf16>;
  static DeviceBuffer<T> act(const std::vector<float>& v) {
    if constexpr (is_bf16) return DeviceBuffer<T>(to_bf16(v));
    else return DeviceBuffer<T>(v);
  }
  static DeviceBuffer<float> f32(const std::vector<float>& v) { return DeviceBuffer<float>(v); }
  static DeviceBuffer<int32_t> i32(const std::vector<int32_t>& v) { return DeviceBuffer<int32_t>(v); }
  template <class U>
  static std::vector<float> host(const DeviceBuffer<U>& b) {
    if constexpr (std::is_same_v<U, bf16>) return to_float(b.download());
    else return b.download();
  }
  MINDLLM_OPS_OF(cuda)
  struct AttnState {
    DeviceBuffer<float> probs, scratch;
  };
  static AttnState attention_state(const cpu::AttentionShape& s) {
    const size_t n = (size_t)s.B * s.Hq * s.T * s.T;
    return {poisoned<float>(n), poisoned<float>(n)};
  }
  static void attention_forward(T* out, AttnState& st, const T* q, const T* k, const T* v,
                                const cpu::AttentionShape& s) {
    cuda::attention_forward(out, st.probs.data(), q, k, v, s);
  }
  static void attention_backward(T* dq, T* dk, T* dv, AttnState& st, const T* dout, const T* q, const T* k, const T* v,
                                 const cpu::AttentionShape& s) {
    cuda::attention_backward(dq, dk, dv, st.scratch.data(), dout, st.probs.data(), q, k, v, s);
  }
  // The pools go up as fp32 or bf16 (kv); rows get their positions and block table offsets.
  static std::vector<float> attention_paged(const ops::PagedInputs& in) {
    std::vector<int32_t> pos, table_of;
    for (size_t s = 0; s < in.past.size(); s++)
      for (int t = 0; t < in.n_rows[s]; t++) pos.push_back(in.past[s] + t), table_of.push_back(in.table_at[s]);
    DeviceBuffer<int32_t> d_pos(pos), d_table_of(table_of), d_tables(in.tables);
    DeviceBuffer<float> k32(in.k_pool), v32(in.v_pool);
    DeviceBuffer<bf16> k16(to_bf16(in.k_pool)), v16(to_bf16(in.v_pool));
    auto q = act(in.q);
    auto out = act(ops::nans((size_t)in.rows() * in.Hq * in.D));
    cuda::PagedAttentionShape s{in.rows(),
                                d_pos.data(),
                                d_table_of.data(),
                                d_tables.data(),
                                in.kv == KvType::bf16 ? (void*)k16.data() : (void*)k32.data(),
                                in.kv == KvType::bf16 ? (void*)v16.data() : (void*)v32.data(),
                                (int64_t)in.block_size * in.Hkv * in.D,
                                in.Hq,
                                in.Hkv,
                                in.D,
                                in.ldq(),
                                in.Hq * in.D,
                                in.Hkv * in.D,
                                in.block_size,
                                in.scale,
                                in.window,
                                in.kv == KvType::bf16};
    cuda::attention_paged_forward(out.data(), q.data(), s);
    return host(out);
  }
};

// Compares every output of case c on the GPU with the CPU's; *compared counts them.
template <class T>
void check_case(const OpCase& c, int* compared) {
  constexpr bool is_bf16 = std::is_same_v<T, bf16>;
  if (is_bf16 && std::holds_alternative<AdamWOp>(c)) GTEST_SKIP() << "AdamW state is fp32 only";
  if (const auto* p = std::get_if<PagedAttentionOp>(&c); p && p->kv == KvType::q8_0)
    GTEST_SKIP() << "the GPU's K/V cache is f32 or bf16 (q8_0 is CPU only)";
  Tensors in = case_inputs(c);
  if (is_bf16)
    for (auto& [name, v] : in.f) v = round_bf16(v);
  std::visit(
      [&](const auto& o) {
        const Out want = o.template run<CpuBackend>(in);
        const Out got = o.template run<CudaBackend<T>>(in);
        const Out again = o.template run<CudaBackend<T>>(in);
        const Mode mode = is_bf16 ? Mode::gpu_bf16 : Mode::gpu_fp32;
        for (const auto& [name, w] : want) {
          ASSERT_TRUE(got.count(name)) << name;
          ++*compared;
          record_err(expect_close(got.at(name), test::to_double(w), tolerance(c, name, mode), tolerance_floor(c),
                                  "output " + name));
          EXPECT_TRUE(same_bytes(got.at(name), again.at(name))) << name << " not deterministic";
          // Embedding gradients: each element gets the CPU's additions in the CPU's order.
          if (std::holds_alternative<EmbeddingOp>(c) && name != "out" && !is_bf16) {
            EXPECT_TRUE(same_bytes(got.at(name), w)) << name << " not the CPU's bytes";
          }
        }
      },
      c);
}

class OpsTableGpu : public ::testing::TestWithParam<int> {};

TEST_P(OpsTableGpu, Fp32MatchesCpu) {
  SKIP_WITHOUT_GPU();
  int compared = 0;
  check_case<float>(op_cases()[GetParam()], &compared);
  if (!IsSkipped()) { EXPECT_GT(compared, 0) << "the case produced no output to compare"; }
}

TEST_P(OpsTableGpu, Bf16MatchesCpu) {
  SKIP_WITHOUT_GPU();
  int compared = 0;
  check_case<bf16>(op_cases()[GetParam()], &compared);
  if (!IsSkipped()) { EXPECT_GT(compared, 0) << "the case produced no output to compare"; }
}

INSTANTIATE_TEST_SUITE_P(Table, OpsTableGpu, ::testing::Range(0, (int)op_cases().size()),
                         [](const ::testing::TestParamInfo<int>& i) { return case_name(op_cases()[i.param]); });

}  // namespace
}  // namespace mindllm
