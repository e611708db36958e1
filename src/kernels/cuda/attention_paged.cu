#include "kernels/cuda/attention_paged.h"

#include <cfloat>

#include "kernels/cuda/common.cuh"

namespace mindllm::cuda {

namespace {

constexpr int kThreads = 128;  // positions per tile: one score per thread
constexpr int kMaxDims = 2;    // head dims per thread: D <= kThreads * kMaxDims

// Element offset of position pos's row (kv head 0) in the pool, for a row's block table.
__device__ __forceinline__ int64_t slot(const PagedAttentionShape& s, const int32_t* table, int pos) {
  return table[pos / s.block_size] * s.block_stride + (int64_t)(pos % s.block_size) * s.ldc;
}

// One block per row: threads over the Hkv x D elements of its key and value.
template <typename A, typename K>
__global__ void kv_store_kernel(PagedAttentionShape s, const A* k, const A* v, int ldk) {
  const int r = blockIdx.x, width = s.Hkv * s.D;
  const int64_t o = slot(s, s.tables + s.table_of[r], s.positions[r]);
  K* kd = static_cast<K*>(s.k_base) + o;
  K* vd = static_cast<K*>(s.v_base) + o;
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    kd[i] = from_float<K>(to_float(k[(size_t)r * ldk + i]));
    vd[i] = from_float<K>(to_float(v[(size_t)r * ldk + i]));
  }
}

// One block per (row, query head), kThreads threads. The allowed positions go in tiles of
// kThreads: thread j scores position tile + j, the block takes the tile's max and rescales its
// running sum and output (online softmax), then thread i accumulates output dims i, i + kThreads
// over the tile's positions in order.
template <typename A, typename K>
__global__ void paged_kernel(A* out, const A* q, PagedAttentionShape s) {
  __shared__ float qs[kThreads * kMaxDims];
  __shared__ float p[kThreads];
  __shared__ float red[32];
  const int r = blockIdx.x, h = blockIdx.y, tid = threadIdx.x, D = s.D;
  const int hk = h / (s.Hq / s.Hkv);
  const int pos = s.positions[r], lo = s.window > 0 ? max(0, pos - s.window + 1) : 0;
  const int32_t* table = s.tables + s.table_of[r];
  const K* kb = static_cast<const K*>(s.k_base) + (size_t)hk * D;
  const K* vb = static_cast<const K*>(s.v_base) + (size_t)hk * D;
  for (int d = tid; d < D; d += kThreads) qs[d] = to_float(q[(size_t)r * s.ldq + (size_t)h * D + d]);
  float acc[kMaxDims] = {0.0f, 0.0f};
  float m = -FLT_MAX, l = 0.0f;
  __syncthreads();
  for (int t0 = lo; t0 <= pos; t0 += kThreads) {
    const int j = t0 + tid;
    float score = -FLT_MAX;
    if (j <= pos) {
      const K* kr = kb + slot(s, table, j);
      float dot = 0.0f;
      for (int d = 0; d < D; d++) dot += qs[d] * to_float(kr[d]);
      score = s.scale * dot;
    }
    const float m_new = fmaxf(m, block_max(score, red));
    const float e = j <= pos ? expf(score - m_new) : 0.0f;
    const float corr = expf(m - m_new);
    l = l * corr + block_sum(e, red);
    p[tid] = e;
    __syncthreads();
    const int n = min(kThreads, pos - t0 + 1);
    for (int i = 0; i < kMaxDims; i++) {
      const int d = tid + i * kThreads;
      if (d >= D) break;
      float a = acc[i] * corr;
      for (int jj = 0; jj < n; jj++) a += p[jj] * to_float(vb[slot(s, table, t0 + jj) + d]);
      acc[i] = a;
    }
    __syncthreads();  // p is rewritten by the next tile
    m = m_new;
  }
  const float inv = 1.0f / l;
  for (int i = 0; i < kMaxDims; i++) {
    const int d = tid + i * kThreads;
    if (d < D) out[(size_t)r * s.ldo + (size_t)h * D + d] = from_float<A>(acc[i] * inv);
  }
}

void check(const PagedAttentionShape& s) {
  MINDLLM_CHECK(s.D >= 1 && s.D <= kThreads * kMaxDims, "attention_paged: head dim " + std::to_string(s.D) +
                                                            " outside 1.." + std::to_string(kThreads * kMaxDims));
  MINDLLM_CHECK(s.Hkv >= 1 && s.Hq % s.Hkv == 0 && s.block_size >= 1, "attention_paged: bad shape");
}

template <typename A>
void store(const PagedAttentionShape& s, const A* k, const A* v, int ldk) {
  check(s);
  if (s.n_rows <= 0) return;
  if (s.bf16) kv_store_kernel<A, bf16><<<s.n_rows, kThreads, 0, stream()>>>(s, k, v, ldk);
  else kv_store_kernel<A, float><<<s.n_rows, kThreads, 0, stream()>>>(s, k, v, ldk);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

template <typename A>
void attend(A* out, const A* q, const PagedAttentionShape& s) {
  check(s);
  if (s.n_rows <= 0) return;
  const dim3 grid(s.n_rows, s.Hq);
  if (s.bf16) paged_kernel<A, bf16><<<grid, kThreads, 0, stream()>>>(out, q, s);
  else paged_kernel<A, float><<<grid, kThreads, 0, stream()>>>(out, q, s);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void paged_kv_store(const PagedAttentionShape& s, const float* k, const float* v, int ldk) { store(s, k, v, ldk); }
void paged_kv_store(const PagedAttentionShape& s, const bf16* k, const bf16* v, int ldk) { store(s, k, v, ldk); }
void attention_paged_forward(float* out, const float* q, const PagedAttentionShape& s) { attend(out, q, s); }
void attention_paged_forward(bf16* out, const bf16* q, const PagedAttentionShape& s) { attend(out, q, s); }

}  // namespace mindllm::cuda
