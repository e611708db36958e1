// Flash-style attention (FlashAttention-2: Dao, 2023, Algorithms 1 and 2), bf16 tensor cores
// through WMMA (16x16x16 bf16 -> fp32). The design, and what to speed up next, is in
// docs/cuda-speed.md. In short:
//
// - Tiles of 64 query rows x 64 keys; 4 warps per block, each warp owns 16 rows of the tile (query
//   rows in the forward and dq kernels, key rows in the dk/dv kernel), so the softmax of a row
//   stays inside one warp (two lanes per row, 32 columns each) and needs only __syncwarp.
// - Tensor-core fragments are loaded from and stored to shared memory (WMMA's layout is opaque):
//   scores go to a per-warp fp32 scratch, the probabilities back as bf16 for the next GEMM.
// - Scores are kept in log2 units (x = scale · log2(e) · q·k) so the exponentials are exp2f; the
//   saved logsumexp is converted back to natural log.
// - Only key blocks that some row of the query block can see are visited (causal, window and
//   packed segments), and in the backward only query blocks that can see the key block.
// - Backward without atomics: a pass over key blocks accumulates dk/dv in registers over the
//   query blocks and over the query heads of the GQA group in a fixed order, and a separate pass
//   over query blocks accumulates dq over the key blocks (the scores are recomputed in each).
#include "kernels/cuda/flash_attention.h"

#include <mma.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "kernels/cuda/common.cuh"

namespace mindllm::cuda {

namespace {

using namespace nvcuda;

constexpr int kBlockM = 64;  // query rows per block
constexpr int kBlockN = 64;  // keys per block
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kWarpRows = 16;  // rows of a tile owned by one warp (kBlockM / kWarps)
static_assert(kWarpRows * kWarps == kBlockM && kBlockM == kBlockN, "one warp owns 16 rows of a square tile");

// Row padding of shared-memory tiles (fewer bank conflicts). WMMA needs ldm to be a multiple of
// 8 bf16 / 4 floats and fragment pointers 32-byte aligned: fragments start at rows that are
// multiples of 16 and columns that are multiples of 16, so any such ldm keeps the alignment.
constexpr int kPadH = 8;  // bf16 elements
constexpr int kPadF = 4;  // floats
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragBRow = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragBCol = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;
using FragAcc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

constexpr size_t align128(size_t n) { return (n + 127) / 128 * 128; }

using cpu::first_key;  // the first key query t of sequence b may see (window, packed segment)

// Query t, whose first key is lo, sees key j: a real row, causal, inside the window and segment.
__device__ __forceinline__ bool visible(int t, int j, int T, int lo) { return t < T && j <= t && j >= lo; }

// The last query of sequence b that sees key j: T - 1, or less with a window or packed segments
// (seg_start never decreases along a row: a binary search for the last t with seg_start <= j).
__device__ __forceinline__ int last_query(const AttentionShape& s, int b, int j) {
  int hi = s.window > 0 ? min(s.T - 1, j + s.window - 1) : s.T - 1;
  if (s.seg_start) {
    const int32_t* seg = s.seg_start + (size_t)b * s.T;
    int lo = j;  // seg[j] <= j
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (seg[mid] <= j) lo = mid;
      else hi = mid - 1;
    }
  }
  return hi;
}

// Rows [row0, row0 + 64) of a strided bf16 matrix (row r at src + r*ld, D values) into a shared
// tile [64][D + kPadH]; rows at or past T become zeros (so padded keys contribute 0, never NaN).
// vec: src and ld allow 16-byte loads.
template <int D>
__device__ void load_tile(bf16* dst, const bf16* src, int ld, int row0, int T, bool vec) {
  constexpr int LD = D + kPadH;
  if (vec) {
    constexpr int kChunks = D / 8;  // uint4 per row
    for (int i = threadIdx.x; i < kBlockM * kChunks; i += kThreads) {
      const int r = i / kChunks, c = (i % kChunks) * 8;
      uint4 val = make_uint4(0u, 0u, 0u, 0u);
      if (row0 + r < T) val = *reinterpret_cast<const uint4*>(src + (size_t)(row0 + r) * ld + c);
      *reinterpret_cast<uint4*>(dst + r * LD + c) = val;
    }
  } else {
    const bf16 zero = __float2bfloat16_rn(0.0f);
    for (int i = threadIdx.x; i < kBlockM * D; i += kThreads) {
      const int r = i / D, c = i % D;
      dst[r * LD + c] = row0 + r < T ? src[(size_t)(row0 + r) * ld + c] : zero;
    }
  }
}

// One warp writes 16 fp32 rows of a staging area [16][D + kPadF] as bf16 rows row0.. of a strided
// matrix (rows at or past T are skipped).
template <int D>
__device__ void store_rows(bf16* dst, int ld, int row0, int T, const float* stage, int lane, bool vec) {
  constexpr int LD = D + kPadF;
  if (vec) {
    constexpr int kChunks = D / 8;
    for (int i = lane; i < kWarpRows * kChunks; i += 32) {
      const int r = i / kChunks, c = (i % kChunks) * 8;
      if (row0 + r >= T) continue;
      const float* s = stage + r * LD + c;
      uint4 packed;
      __nv_bfloat162* p2 = reinterpret_cast<__nv_bfloat162*>(&packed);
#pragma unroll
      for (int j = 0; j < 4; j++) p2[j] = __floats2bfloat162_rn(s[2 * j], s[2 * j + 1]);
      *reinterpret_cast<uint4*>(dst + (size_t)(row0 + r) * ld + c) = packed;
    }
  } else {
    for (int i = lane; i < kWarpRows * D; i += 32) {
      const int r = i / D, c = i % D;
      if (row0 + r < T) dst[(size_t)(row0 + r) * ld + c] = __float2bfloat16_rn(stage[r * LD + c]);
    }
  }
}

// One warp: S[16][64] (fp32, stride lds) = A[16][D] · B[64][D]^T, A and B row-major bf16 tiles
// (stride D + kPadH). B^T is read as a column-major matrix_b.
template <int D>
__device__ void gemm_abt(float* S, int lds, const bf16* A, const bf16* B) {
  constexpr int LD = D + kPadH;
  FragAcc acc[kBlockN / 16];
#pragma unroll
  for (int n = 0; n < kBlockN / 16; n++) wmma::fill_fragment(acc[n], 0.0f);
#pragma unroll
  for (int kk = 0; kk < D; kk += 16) {
    FragA a;
    wmma::load_matrix_sync(a, A + kk, LD);
#pragma unroll
    for (int n = 0; n < kBlockN / 16; n++) {
      FragBCol b;
      wmma::load_matrix_sync(b, B + n * 16 * LD + kk, LD);
      wmma::mma_sync(acc[n], a, b, acc[n]);
    }
  }
#pragma unroll
  for (int n = 0; n < kBlockN / 16; n++) wmma::store_matrix_sync(S + n * 16, acc[n], lds, wmma::mem_row_major);
}

// One warp: acc[16][D] += A[16][64] · B[64][D]; A bf16 row-major (stride lda), B a row-major
// tile (stride D + kPadH); acc as D/16 accumulator fragments.
template <int D>
__device__ void gemm_ab(FragAcc (&acc)[D / 16], const bf16* A, int lda, const bf16* B) {
  constexpr int LD = D + kPadH;
#pragma unroll
  for (int kk = 0; kk < kBlockN; kk += 16) {
    FragA a;
    wmma::load_matrix_sync(a, A + kk, lda);
#pragma unroll
    for (int n = 0; n < D / 16; n++) {
      FragBRow b;
      wmma::load_matrix_sync(b, B + kk * LD + n * 16, LD);
      wmma::mma_sync(acc[n], a, b, acc[n]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Forward: block = (query block, query head, batch). Q tile loaded once; for each visible key
// block: S = Q K^T (per warp), online softmax per row, O = O · alpha + P V with O in shared fp32.

template <int D>
struct ForwardSmem {
  static constexpr int LDH = D + kPadH;        // bf16 tiles
  static constexpr int LDS = kBlockN + kPadF;  // fp32 scores
  static constexpr int LDP = kBlockN + kPadH;  // bf16 probabilities
  static constexpr int LDO = D + kPadF;        // fp32 output accumulator
  static constexpr size_t q = 0;
  static constexpr size_t k = q + align128(sizeof(bf16) * kBlockM * LDH);
  static constexpr size_t v = k + align128(sizeof(bf16) * kBlockN * LDH);
  static constexpr size_t s = v + align128(sizeof(bf16) * kBlockN * LDH);
  static constexpr size_t p = s + align128(sizeof(float) * kBlockM * LDS);
  static constexpr size_t o = p + align128(sizeof(bf16) * kBlockM * LDP);
  static constexpr size_t bytes = o + align128(sizeof(float) * kBlockM * LDO);
};

template <int D>
__global__ void __launch_bounds__(kThreads) flash_forward_kernel(bf16* out, float* lse, const bf16* q, const bf16* k,
                                                                 const bf16* v, AttentionShape s, bool vec) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  using L = ForwardSmem<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* Qs = reinterpret_cast<bf16*>(smem + L::q);
  bf16* Ks = reinterpret_cast<bf16*>(smem + L::k);
  bf16* Vs = reinterpret_cast<bf16*>(smem + L::v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* Sw = reinterpret_cast<float*>(smem + L::s) + warp * kWarpRows * L::LDS;
  bf16* Pw = reinterpret_cast<bf16*>(smem + L::p) + warp * kWarpRows * L::LDP;
  float* Ow = reinterpret_cast<float*>(smem + L::o) + warp * kWarpRows * L::LDO;

  const int T = s.T, h = blockIdx.y, b = blockIdx.z, hk = h / (s.Hq / s.Hkv);
  const int q0 = (gridDim.x - 1 - blockIdx.x) * kBlockM;  // the longest rows start first
  const bf16* qb = q + (size_t)b * T * s.ldq + (size_t)h * D;
  const bf16* kb = k + (size_t)b * T * s.ldk + (size_t)hk * D;
  const bf16* vb = v + (size_t)b * T * s.ldv + (size_t)hk * D;

  load_tile<D>(Qs, qb, s.ldq, q0, T, vec);
  for (int i = lane; i < kWarpRows * L::LDO; i += 32) Ow[i] = 0.0f;

  // Two lanes per row: lane owns row r of the warp's 16 and columns [half*32, half*32 + 32).
  const int r = lane >> 1, half = lane & 1;
  const int t = q0 + warp * kWarpRows + r;
  const int lo_t = t < T ? first_key(s, b, t) : 0;
  const float sl2 = s.scale * kLog2e;
  float m = -INFINITY, l = 0.0f;  // running max (log2 units) and sum of exp2(x - m)
  float* srow = Sw + r * L::LDS + half * 32;
  bf16* prow = Pw + r * L::LDP + half * 32;
  float* orow = Ow + r * L::LDO + half * (D / 2);

  const int kb0 = first_key(s, b, q0) / kBlockN, kb1 = (min(T, q0 + kBlockM) - 1) / kBlockN;
  for (int kbi = kb0; kbi <= kb1; kbi++) {
    const int c0 = kbi * kBlockN;
    __syncthreads();  // every warp is done with the previous K/V tiles (and Q is loaded)
    load_tile<D>(Ks, kb, s.ldk, c0, T, vec);
    load_tile<D>(Vs, vb, s.ldv, c0, T, vec);
    __syncthreads();

    gemm_abt<D>(Sw, L::LDS, Qs + warp * kWarpRows * L::LDH, Ks);
    __syncwarp();

    float mx = -INFINITY;
#pragma unroll 8
    for (int j = 0; j < 32; j++) {
      const float x = visible(t, c0 + half * 32 + j, T, lo_t) ? srow[j] * sl2 : -INFINITY;
      srow[j] = x;
      mx = fmaxf(mx, x);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float m_new = fmaxf(m, mx);
    float alpha = 1.0f, sum = 0.0f;
    if (m_new == -INFINITY) {  // nothing visible in this row yet: P = 0, O and l unchanged
      for (int j = 0; j < 32; j++) prow[j] = __float2bfloat16_rn(0.0f);
    } else {
      alpha = exp2f(m - m_new);  // 0 on the first visible block (m = -inf)
#pragma unroll 8
      for (int j = 0; j < 32; j++) {
        const float p = exp2f(srow[j] - m_new);  // masked: exp2(-inf) = 0
        sum += p;
        prow[j] = __float2bfloat16_rn(p);
      }
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);  // a + b on both lanes: same bits
    l = l * alpha + sum;
    m = m_new;
    for (int j = 0; j < D / 2; j++) orow[j] *= alpha;
    __syncwarp();

    FragAcc acc[D / 16];
#pragma unroll
    for (int n = 0; n < D / 16; n++) wmma::load_matrix_sync(acc[n], Ow + n * 16, L::LDO, wmma::mem_row_major);
    gemm_ab<D>(acc, Pw, L::LDP, Vs);
#pragma unroll
    for (int n = 0; n < D / 16; n++) wmma::store_matrix_sync(Ow + n * 16, acc[n], L::LDO, wmma::mem_row_major);
    __syncwarp();
  }

  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  for (int j = 0; j < D / 2; j++) orow[j] *= inv;
  if (half == 0 && t < T) lse[((size_t)b * s.Hq + h) * T + t] = (m + log2f(l)) * kLn2;
  __syncwarp();
  store_rows<D>(out + (size_t)b * T * s.ldo + (size_t)h * D, s.ldo, q0 + warp * kWarpRows, T, Ow, lane, vec);
#else
  __trap();  // bf16 WMMA needs sm_80
#endif
}

// ---------------------------------------------------------------------------------------------
// Backward.

// delta[b, h, t] = Σ_d dout[t, h, d] · out[t, h, d] (fp32): one warp per row, fixed order.
template <int D>
__global__ void flash_delta_kernel(float* delta, const bf16* dout, const bf16* out, AttentionShape s) {
  const int lane = threadIdx.x % 32;
  const size_t row = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= (size_t)s.B * s.Hq * s.T) return;
  const int t = (int)(row % s.T), h = (int)(row / s.T % s.Hq), b = (int)(row / ((size_t)s.T * s.Hq));
  const size_t off = ((size_t)b * s.T + t) * s.ldo + (size_t)h * D;
  float acc = 0.0f;
  for (int d = lane; d < D; d += 32) acc += __bfloat162float(dout[off + d]) * __bfloat162float(out[off + d]);
  acc = warp_sum(acc);
  if (lane == 0) delta[row] = acc;
}

// Shared memory of both backward kernels: four bf16 tiles, per warp an fp32 scratch for S and dP
// (contiguous, reused as the 16 x (D + 4) staging of the result) and a bf16 scratch for P and dS,
// and the lse, delta and first key of 64 query rows.
template <int D>
struct BackwardSmem {
  static constexpr int LDH = D + kPadH;
  static constexpr int LDS = kBlockN + kPadF;
  static constexpr int LDP = kBlockN + kPadH;
  static constexpr int LDO = D + kPadF;                  // staging
  static constexpr int kScratchF = 2 * kWarpRows * LDS;  // floats per warp
  static constexpr int kScratchH = 2 * kWarpRows * LDP;  // bf16 per warp
  static_assert(kWarpRows * LDO <= kScratchF, "the S/dP scratch doubles as the output staging");
  static constexpr size_t tile = align128(sizeof(bf16) * kBlockM * LDH);
  static constexpr size_t t0 = 0, t1 = tile, t2 = 2 * tile, t3 = 3 * tile;
  static constexpr size_t f = 4 * tile;
  static constexpr size_t hs = f + align128(sizeof(float) * kWarps * kScratchF);
  static constexpr size_t stats = hs + align128(sizeof(bf16) * kWarps * kScratchH);
  static constexpr size_t bytes = stats + align128(sizeof(float) * 3 * kBlockM);
};

// dk, dv: block = (key block, kv head, batch); warp owns 16 keys. For each query head of the
// group, in order, and each query block that sees these keys, in order:
//   S^T = K Q^T, P^T = exp2(S^T·scale·log2e − lse·log2e) (masked), dP^T = V dO^T,
//   dS^T = P^T ∘ (dP^T − delta), dV += P^T dO, dK += dS^T Q   (dK scaled once at the end).
template <int D>
__global__ void __launch_bounds__(kThreads)
    flash_backward_dkdv_kernel(bf16* dk, bf16* dv, const bf16* dout, const float* lse, const float* delta,
                               const bf16* q, const bf16* k, const bf16* v, AttentionShape s, bool vec) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  using L = BackwardSmem<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* Ks = reinterpret_cast<bf16*>(smem + L::t0);
  bf16* Vs = reinterpret_cast<bf16*>(smem + L::t1);
  bf16* Qs = reinterpret_cast<bf16*>(smem + L::t2);
  bf16* dOs = reinterpret_cast<bf16*>(smem + L::t3);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* STw = reinterpret_cast<float*>(smem + L::f) + warp * L::kScratchF;
  float* dPTw = STw + kWarpRows * L::LDS;
  bf16* PTw = reinterpret_cast<bf16*>(smem + L::hs) + warp * L::kScratchH;
  bf16* dSTw = PTw + kWarpRows * L::LDP;
  float* lse_s = reinterpret_cast<float*>(smem + L::stats);
  float* delta_s = lse_s + kBlockM;
  int* lo_s = reinterpret_cast<int*>(delta_s + kBlockM);

  const int T = s.T, hk = blockIdx.y, b = blockIdx.z, group = s.Hq / s.Hkv;
  const int c0 = blockIdx.x * kBlockN;  // the first key blocks see the most queries: they start first
  load_tile<D>(Ks, k + (size_t)b * T * s.ldk + (size_t)hk * D, s.ldk, c0, T, vec);
  load_tile<D>(Vs, v + (size_t)b * T * s.ldv + (size_t)hk * D, s.ldv, c0, T, vec);

  FragAcc dK[D / 16], dV[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; n++) wmma::fill_fragment(dK[n], 0.0f), wmma::fill_fragment(dV[n], 0.0f);

  const int r = lane >> 1, half = lane & 1;
  const int key = c0 + warp * kWarpRows + r;
  const float sl2 = s.scale * kLog2e;
  // Queries that see keys [c0, c0 + 64): t >= c0 and t <= the last query that sees the last key.
  const int qb0 = c0 / kBlockM, qb1 = last_query(s, b, min(T, c0 + kBlockN) - 1) / kBlockM;

  for (int h = hk * group; h < (hk + 1) * group; h++) {
    const bf16* qb = q + (size_t)b * T * s.ldq + (size_t)h * D;
    const bf16* dob = dout + (size_t)b * T * s.ldo + (size_t)h * D;
    const float* lseb = lse + ((size_t)b * s.Hq + h) * T;
    const float* deltab = delta + ((size_t)b * s.Hq + h) * T;
    for (int qbi = qb0; qbi <= qb1; qbi++) {
      const int t0 = qbi * kBlockM;
      __syncthreads();  // every warp is done with the previous Q/dO tiles and statistics
      load_tile<D>(Qs, qb, s.ldq, t0, T, vec);
      load_tile<D>(dOs, dob, s.ldo, t0, T, vec);
      if (threadIdx.x < kBlockM) {
        const int t = t0 + threadIdx.x;
        lse_s[threadIdx.x] = t < T ? lseb[t] * kLog2e : 0.0f;
        delta_s[threadIdx.x] = t < T ? deltab[t] : 0.0f;
        lo_s[threadIdx.x] = t < T ? first_key(s, b, t) : 0;
      }
      __syncthreads();

      gemm_abt<D>(STw, L::LDS, Ks + warp * kWarpRows * L::LDH, Qs);
      gemm_abt<D>(dPTw, L::LDS, Vs + warp * kWarpRows * L::LDH, dOs);
      __syncwarp();
#pragma unroll 8
      for (int j = 0; j < 32; j++) {
        const int col = half * 32 + j;  // query t0 + col
        const float p = visible(t0 + col, key, T, lo_s[col]) ? exp2f(STw[r * L::LDS + col] * sl2 - lse_s[col]) : 0.0f;
        const float ds = p * (dPTw[r * L::LDS + col] - delta_s[col]);
        PTw[r * L::LDP + col] = __float2bfloat16_rn(p);
        dSTw[r * L::LDP + col] = __float2bfloat16_rn(ds);
      }
      __syncwarp();
      gemm_ab<D>(dV, PTw, L::LDP, dOs);
      gemm_ab<D>(dK, dSTw, L::LDP, Qs);
    }
  }

  // Results through the warp's fp32 scratch (the S/dP area) to bf16 rows.
  float* stage = STw;
  const int row0 = c0 + warp * kWarpRows;
#pragma unroll
  for (int n = 0; n < D / 16; n++) {
    for (int i = 0; i < dK[n].num_elements; i++) dK[n].x[i] *= s.scale;
  }
  __syncwarp();
#pragma unroll
  for (int n = 0; n < D / 16; n++) wmma::store_matrix_sync(stage + n * 16, dK[n], L::LDO, wmma::mem_row_major);
  __syncwarp();
  store_rows<D>(dk + (size_t)b * T * s.ldk + (size_t)hk * D, s.ldk, row0, T, stage, lane, vec);
  __syncwarp();
#pragma unroll
  for (int n = 0; n < D / 16; n++) wmma::store_matrix_sync(stage + n * 16, dV[n], L::LDO, wmma::mem_row_major);
  __syncwarp();
  store_rows<D>(dv + (size_t)b * T * s.ldv + (size_t)hk * D, s.ldv, row0, T, stage, lane, vec);
#else
  __trap();
#endif
}

// dq: block = (query block, query head, batch); warp owns 16 query rows. For each visible key
// block, in order: S = Q K^T, P (from lse), dP = dO V^T, dS = P ∘ (dP − delta), dQ += dS K.
template <int D>
__global__ void __launch_bounds__(kThreads)
    flash_backward_dq_kernel(bf16* dq, const bf16* dout, const float* lse, const float* delta, const bf16* q,
                             const bf16* k, const bf16* v, AttentionShape s, bool vec) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  using L = BackwardSmem<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* Qs = reinterpret_cast<bf16*>(smem + L::t0);
  bf16* dOs = reinterpret_cast<bf16*>(smem + L::t1);
  bf16* Ks = reinterpret_cast<bf16*>(smem + L::t2);
  bf16* Vs = reinterpret_cast<bf16*>(smem + L::t3);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* Sw = reinterpret_cast<float*>(smem + L::f) + warp * L::kScratchF;
  float* dPw = Sw + kWarpRows * L::LDS;
  bf16* dSw = reinterpret_cast<bf16*>(smem + L::hs) + warp * L::kScratchH;

  const int T = s.T, h = blockIdx.y, b = blockIdx.z, hk = h / (s.Hq / s.Hkv);
  const int q0 = (gridDim.x - 1 - blockIdx.x) * kBlockM;
  const bf16* kb = k + (size_t)b * T * s.ldk + (size_t)hk * D;
  const bf16* vb = v + (size_t)b * T * s.ldv + (size_t)hk * D;
  load_tile<D>(Qs, q + (size_t)b * T * s.ldq + (size_t)h * D, s.ldq, q0, T, vec);
  load_tile<D>(dOs, dout + (size_t)b * T * s.ldo + (size_t)h * D, s.ldo, q0, T, vec);

  const int r = lane >> 1, half = lane & 1;
  const int t = q0 + warp * kWarpRows + r;
  const size_t stat = ((size_t)b * s.Hq + h) * T + t;
  const float lse_t = t < T ? lse[stat] * kLog2e : 0.0f;
  const float delta_t = t < T ? delta[stat] : 0.0f;
  const int lo_t = t < T ? first_key(s, b, t) : 0;
  const float sl2 = s.scale * kLog2e;

  FragAcc dQ[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; n++) wmma::fill_fragment(dQ[n], 0.0f);

  const int kb0 = first_key(s, b, q0) / kBlockN, kb1 = (min(T, q0 + kBlockM) - 1) / kBlockN;
  for (int kbi = kb0; kbi <= kb1; kbi++) {
    const int c0 = kbi * kBlockN;
    __syncthreads();
    load_tile<D>(Ks, kb, s.ldk, c0, T, vec);
    load_tile<D>(Vs, vb, s.ldv, c0, T, vec);
    __syncthreads();

    gemm_abt<D>(Sw, L::LDS, Qs + warp * kWarpRows * L::LDH, Ks);
    gemm_abt<D>(dPw, L::LDS, dOs + warp * kWarpRows * L::LDH, Vs);
    __syncwarp();
#pragma unroll 8
    for (int j = 0; j < 32; j++) {
      const int col = half * 32 + j;
      const float p = visible(t, c0 + col, T, lo_t) ? exp2f(Sw[r * L::LDS + col] * sl2 - lse_t) : 0.0f;
      dSw[r * L::LDP + col] = __float2bfloat16_rn(p * (dPw[r * L::LDS + col] - delta_t));
    }
    __syncwarp();
    gemm_ab<D>(dQ, dSw, L::LDP, Ks);
  }

  float* stage = Sw;
#pragma unroll
  for (int n = 0; n < D / 16; n++) {
    for (int i = 0; i < dQ[n].num_elements; i++) dQ[n].x[i] *= s.scale;
  }
  __syncwarp();
#pragma unroll
  for (int n = 0; n < D / 16; n++) wmma::store_matrix_sync(stage + n * 16, dQ[n], L::LDO, wmma::mem_row_major);
  __syncwarp();
  store_rows<D>(dq + (size_t)b * T * s.ldq + (size_t)h * D, s.ldq, q0 + warp * kWarpRows, T, stage, lane, vec);
#else
  __trap();
#endif
}

// ---------------------------------------------------------------------------------------------
// Host side.

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

std::string shape_text(const AttentionShape& s) {
  return "B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " Hq=" + std::to_string(s.Hq) +
         " Hkv=" + std::to_string(s.Hkv) + " D=" + std::to_string(s.D);
}

void check_shape(const AttentionShape& s) {
  if (!flash_attention_supported(s))
    internal_error("cuda flash attention: unsupported shape " + shape_text(s) +
                   " (head dim 64 or 128, query heads a multiple of kv heads)");
  MINDLLM_CHECK(s.Hq <= 65535 && s.B <= 65535 && s.T <= (1 << 28), "cuda flash attention: grid too large");
}

template <typename Kernel>
void set_smem(Kernel kernel, size_t bytes) {
  MINDLLM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

template <int D>
void forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttentionShape& s) {
  const bool vec = aligned16(out) && aligned16(q) && aligned16(k) && aligned16(v) && s.ldq % 8 == 0 && s.ldk % 8 == 0 &&
                   s.ldv % 8 == 0 && s.ldo % 8 == 0;
  const size_t bytes = ForwardSmem<D>::bytes;
  set_smem(flash_forward_kernel<D>, bytes);
  const dim3 grid((s.T + kBlockM - 1) / kBlockM, s.Hq, s.B);
  flash_forward_kernel<D><<<grid, kThreads, bytes, stream()>>>(out, lse, q, k, v, s, vec);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

template <int D>
void backward(bf16* dq, bf16* dk, bf16* dv, float* delta, const bf16* dout, const bf16* out, const float* lse,
              const bf16* q, const bf16* k, const bf16* v, const AttentionShape& s) {
  const bool vec = aligned16(dq) && aligned16(dk) && aligned16(dv) && aligned16(dout) && aligned16(q) && aligned16(k) &&
                   aligned16(v) && s.ldq % 8 == 0 && s.ldk % 8 == 0 && s.ldv % 8 == 0 && s.ldo % 8 == 0;
  const size_t rows = (size_t)s.B * s.Hq * s.T;
  constexpr int kDeltaThreads = 256;
  flash_delta_kernel<D>
      <<<(unsigned)((rows + kDeltaThreads / 32 - 1) / (kDeltaThreads / 32)), kDeltaThreads, 0, stream()>>>(delta, dout,
                                                                                                           out, s);
  MINDLLM_CUDA_CHECK_LAUNCH();

  const size_t bytes = BackwardSmem<D>::bytes;
  set_smem(flash_backward_dkdv_kernel<D>, bytes);
  set_smem(flash_backward_dq_kernel<D>, bytes);
  const dim3 kv_grid((s.T + kBlockN - 1) / kBlockN, s.Hkv, s.B);
  flash_backward_dkdv_kernel<D><<<kv_grid, kThreads, bytes, stream()>>>(dk, dv, dout, lse, delta, q, k, v, s, vec);
  MINDLLM_CUDA_CHECK_LAUNCH();
  const dim3 q_grid((s.T + kBlockM - 1) / kBlockM, s.Hq, s.B);
  flash_backward_dq_kernel<D><<<q_grid, kThreads, bytes, stream()>>>(dq, dout, lse, delta, q, k, v, s, vec);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

bool flash_attention_supported(const AttentionShape& s) {
  return (s.D == 64 || s.D == 128) && s.Hkv > 0 && s.Hq >= s.Hkv && s.Hq % s.Hkv == 0;
}

void flash_attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                             const AttentionShape& s) {
  if (s.B <= 0 || s.T <= 0) return;
  check_shape(s);
  if (s.D == 64) forward<64>(out, lse, q, k, v, s);
  else forward<128>(out, lse, q, k, v, s);
}

void flash_attention_backward(bf16* dq, bf16* dk, bf16* dv, float* delta, const bf16* dout, const bf16* out,
                              const float* lse, const bf16* q, const bf16* k, const bf16* v, const AttentionShape& s) {
  if (s.B <= 0 || s.T <= 0) return;
  check_shape(s);
  if (s.D == 64) backward<64>(dq, dk, dv, delta, dout, out, lse, q, k, v, s);
  else backward<128>(dq, dk, dv, delta, dout, out, lse, q, k, v, s);
}

}  // namespace mindllm::cuda
