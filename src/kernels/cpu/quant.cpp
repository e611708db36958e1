#include "kernels/cpu/quant.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <omp.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/env.h"
#include "core/profile.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/quant_impl.h"

namespace mindllm::cpu {

using namespace quant_detail;

const char* quant_type_name(QuantType t) {
  switch (t) {
    case QuantType::bf16: return "bf16";
    case QuantType::f16: return "f16";
    case QuantType::q8_0: return "q8_0";
    case QuantType::q4_0: return "q4_0";
    case QuantType::q4_k: return "q4_k";
  }
  return "?";
}

bool quant_type_from_name(const std::string& name, QuantType* out) {
  for (QuantType t : {QuantType::f16, QuantType::bf16, QuantType::q8_0, QuantType::q4_0, QuantType::q4_k})
    if (name == quant_type_name(t)) return *out = t, true;
  return false;
}

const char* quant_type_names() { return "f16, bf16, q8_0, q4_0 or q4_k"; }

int quant_block_weights(QuantType t) { return is_float16(t) ? 1 : t == QuantType::q4_k ? kSuperBlock : kQuantBlock; }

int quant_block_bytes(QuantType t) {
  switch (t) {
    case QuantType::bf16:
    case QuantType::f16: return 2;
    case QuantType::q8_0: return 34;
    case QuantType::q4_0: return 18;
    case QuantType::q4_k: return 144;
  }
  return 0;
}

bool quant_row_fits(QuantType t, int64_t n) { return n > 0 && n % quant_block_weights(t) == 0; }

size_t quant_row_bytes(QuantType t, int64_t n) { return (size_t)n / quant_block_weights(t) * quant_block_bytes(t); }

namespace {

void put_half(uint8_t* p, float d) {
  const uint16_t h = float_to_half(d);
  p[0] = h & 0xff, p[1] = h >> 8;
}
float get_half(const uint8_t* p) { return half_to_float(static_cast<uint16_t>(p[0] | p[1] << 8)); }

}  // namespace

void quantize_row(QuantType t, const float* x, int64_t n, uint8_t* out) {
  MINDLLM_CHECK(quant_row_fits(t, n), "quantize_row: row length is not whole blocks");
  if (t == QuantType::q4_k) return quantize_row_q4k(x, n, out);
  if (is_float16(t)) {
    for (int64_t i = 0; i < n; i++) {
      const uint16_t h = t == QuantType::bf16 ? float_to_bf16(x[i]) : float_to_half(x[i]);
      out[2 * i] = h & 0xff, out[2 * i + 1] = h >> 8;
    }
    return;
  }
  for (int64_t b = 0; b < n / kQuantBlock; b++) {
    const float* v = x + kQuantBlock * b;
    if (t == QuantType::q8_0) {
      uint8_t* o = out + 34 * b;
      float amax = 0.0f;
      for (int k = 0; k < 32; k++) amax = std::max(amax, std::fabs(v[k]));
      const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
      put_half(o, d);
      for (int k = 0; k < 32; k++) o[2 + k] = static_cast<uint8_t>(static_cast<int8_t>(std::roundf(v[k] * id)));
    } else {
      uint8_t* o = out + 18 * b;
      float amax = 0.0f, m = 0.0f;  // the value of largest magnitude, sign kept
      for (int k = 0; k < 32; k++)
        if (amax < std::fabs(v[k])) amax = std::fabs(v[k]), m = v[k];
      const float d = m / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
      put_half(o, d);
      for (int j = 0; j < 16; j++) {
        const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(v[j] * id + 8.5f)));
        const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(v[j + 16] * id + 8.5f)));
        o[2 + j] = static_cast<uint8_t>(lo | hi << 4);
      }
    }
  }
}

void dequantize_row(QuantType t, const uint8_t* in, int64_t n, float* out) {
  MINDLLM_CHECK(quant_row_fits(t, n), "dequantize_row: row length is not whole blocks");
  if (t == QuantType::q4_k) return dequantize_row_q4k(in, n, out);
  if (is_float16(t)) {
    for (int64_t i = 0; i < n; i++) {
      const uint16_t h = static_cast<uint16_t>(in[2 * i] | in[2 * i + 1] << 8);
      out[i] = t == QuantType::bf16 ? bf16_to_float(h) : half_to_float(h);
    }
    return;
  }
  for (int64_t b = 0; b < n / kQuantBlock; b++) {
    float* o = out + kQuantBlock * b;
    if (t == QuantType::q8_0) {
      const uint8_t* p = in + 34 * b;
      const float d = get_half(p);
      for (int k = 0; k < 32; k++) o[k] = d * static_cast<float>(static_cast<int8_t>(p[2 + k]));
    } else {
      const uint8_t* p = in + 18 * b;
      const float d = get_half(p);
      for (int j = 0; j < 16; j++) {
        o[j] = d * static_cast<float>((p[2 + j] & 0x0f) - 8);
        o[j + 16] = d * static_cast<float>((p[2 + j] >> 4) - 8);
      }
    }
  }
}

namespace quant_detail {

void copy_block(const QuantMatrix& w, int o, int b, uint8_t* block) {
  const bool q8 = w.type == QuantType::q8_0;
  const int bytes = quant_block_bytes(w.type), chunks = q8 ? 4 : 2;
  const size_t rb = w.row_bytes();
  const int grouped = w.O / kPackRows * kPackRows;
  if (!w.packed || o >= grouped) {
    std::memcpy(block, w.data + (size_t)o * rb + (size_t)b * bytes, bytes);
    return;
  }
  const int c = o % kPackRows;
  const uint8_t* p = w.data + (size_t)(o - c) * rb + (size_t)b * kPackRows * bytes;
  if (w.type == QuantType::q4_k) return unpack_q4k_block(p, c, block);
  std::memcpy(block, p + 2 * c, 2);
  for (int k = 0; k < chunks; k++) std::memcpy(block + 2 + 8 * k, p + packed_chunk(c, k), 8);
}

// Activations round half to even (as ggml's AVX2 quantize_row_q8_0 does), so the portable and
// the AVX2 kernels quantise identically.
void quantize_act_scalar(const float* x, int nb, int8_t* qs, float* d, int32_t* sum) {
  for (int b = 0; b < nb; b++) {
    const float* v = x + 32 * b;
    float amax = 0.0f;
    for (int k = 0; k < 32; k++) amax = std::max(amax, std::fabs(v[k]));
    const float s = amax / 127.0f, id = s != 0.0f ? 127.0f / amax : 0.0f;
    d[b] = half_to_float(float_to_half(s));
    sum[b] = 0;
    for (int k = 0; k < 32; k++) sum[b] += qs[32 * b + k] = static_cast<int8_t>(std::nearbyint(v[k] * id));
  }
}

void dot_rows_scalar(const QuantMatrix& w, int o0, int o1, const ActQ8& x, int N, float* out, int ldo) {
  if (w.type == QuantType::q4_k) return q4k_rows_scalar(w, o0, o1, x, N, out, ldo);
  const bool q8 = w.type == QuantType::q8_0;
  uint8_t p[34];
  for (int o = o0; o < o1; o++) {
    for (int n = 0; n < N; n++) {
      const int8_t* xq = x.qs + (size_t)n * x.nb * 32;
      const float* xd = x.d + (size_t)n * x.nb;
      float sum = 0.0f;
      for (int b = 0; b < x.nb; b++) {
        copy_block(w, o, b, p);
        int isum = 0;
        const int8_t* xb = xq + 32 * b;
        if (q8) {
          for (int k = 0; k < 32; k++) isum += static_cast<int8_t>(p[2 + k]) * xb[k];
        } else {
          for (int j = 0; j < 16; j++) isum += ((p[2 + j] & 0x0f) - 8) * xb[j] + ((p[2 + j] >> 4) - 8) * xb[j + 16];
        }
        sum = std::fma(static_cast<float>(isum), get_half(p) * xd[b], sum);
      }
      out[(size_t)n * ldo + o] = sum;
    }
  }
}

void float16_rows_scalar(const QuantMatrix& w, int o0, int o1, const float* in, int N, float* out, int ldo) {
  const bool bf = w.type == QuantType::bf16;
  for (int o = o0; o < o1; o++)
    for (int n = 0; n < N; n++) {
      const float* x = in + (size_t)n * w.I;
      float sum = 0.0f;
      for (int i = 0; i < w.I; i++) {
        const uint16_t h = float16_at(w, o, i);
        sum = std::fma(bf ? bf16_to_float(h) : half_to_float(h), x[i], sum);
      }
      out[(size_t)n * ldo + o] = sum;
    }
}

}  // namespace quant_detail

void pack_rows(QuantType t, const uint8_t* rows, int O, int I, uint8_t* out) {
  MINDLLM_CHECK(quant_row_fits(t, I), "pack_rows: the rows are not whole blocks");
  if (is_float16(t)) {
    const uint16_t* src = reinterpret_cast<const uint16_t*>(rows);
    uint16_t* dst = reinterpret_cast<uint16_t*>(out);
    const int grouped = O / kPack16Rows * kPack16Rows;
    for (int g = 0; g < grouped; g += kPack16Rows)
      for (int c = 0; c < kPack16Rows; c++)
        for (int i = 0; i < I; i++)
          dst[(size_t)g * I + (size_t)i * kPack16Rows + pack16_slot(t, c)] = src[(size_t)(g + c) * I + i];
    std::memcpy(dst + (size_t)grouped * I, src + (size_t)grouped * I, sizeof(uint16_t) * (O - grouped) * I);
    return;
  }
  const bool q8 = t == QuantType::q8_0;
  const int bytes = quant_block_bytes(t), chunks = q8 ? 4 : 2, nb = I / quant_block_weights(t);
  const size_t rb = quant_row_bytes(t, I);
  const int grouped = O / kPackRows * kPackRows;
  for (int g = 0; g < grouped; g += kPackRows)
    for (int b = 0; b < nb; b++) {
      uint8_t* p = out + (size_t)g * rb + (size_t)b * kPackRows * bytes;
      for (int c = 0; c < kPackRows; c++) {
        const uint8_t* src = rows + (size_t)(g + c) * rb + (size_t)b * bytes;
        if (t == QuantType::q4_k) {
          pack_q4k_block(src, c, p);
          continue;
        }
        std::memcpy(p + 2 * c, src, 2);
        for (int k = 0; k < chunks; k++) std::memcpy(p + packed_chunk(c, k), src + 2 + 8 * k, 8);
      }
    }
  std::memcpy(out + (size_t)grouped * rb, rows + (size_t)grouped * rb, (size_t)(O - grouped) * rb);
}

void pack_rows_amx(const uint8_t* rows, int O, int I, uint8_t* out) {
  MINDLLM_CHECK(I % kAmxK == 0, "pack_rows_amx: row length is not whole tile steps");
  const uint16_t* src = reinterpret_cast<const uint16_t*>(rows);
  uint16_t* dst = reinterpret_cast<uint16_t*>(out);
  const int grouped = O / kPack16Rows * kPack16Rows;
  for (int g = 0; g < grouped; g += kPack16Rows)
    for (int i = 0; i < I; i += 2)
      for (int c = 0; c < kPack16Rows; c++) {
        uint16_t* p = dst + (size_t)g * I + (size_t)(i / 2) * 64 + (c / 16) * 32 + (c % 16) * 2;
        p[0] = src[(size_t)(g + c) * I + i], p[1] = src[(size_t)(g + c) * I + i + 1];
      }
  std::memcpy(dst + (size_t)grouped * I, src + (size_t)grouped * I, sizeof(uint16_t) * (O - grouped) * I);
}

void dequantize_matrix_row(const QuantMatrix& w, int o, float* out) {
  if (is_float16(w.type) && w.packed) {
    for (int i = 0; i < w.I; i++) {
      const uint16_t h = float16_at(w, o, i);
      out[i] = w.type == QuantType::bf16 ? bf16_to_float(h) : half_to_float(h);
    }
    return;
  }
  if (!w.packed) return dequantize_row(w.type, w.data + (size_t)o * w.row_bytes(), w.I, out);
  uint8_t block[144];
  const int bw = quant_block_weights(w.type);
  for (int b = 0; b < w.I / bw; b++) {
    copy_block(w, o, b, block);
    dequantize_row(w.type, block, bw, out + (size_t)bw * b);
  }
}

namespace {

bool use_avx2() {
  static const bool yes = [] {
    if (env_flag("MINDLLM_QUANT_SCALAR")) return false;
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return false;
#endif
  }();
  return yes;
}

}  // namespace

const char* quant_kernel_name() { return use_avx2() ? "avx2" : "scalar"; }

void linear_forward_quant(float* out, const float* in, const QuantMatrix& w, const float* bias, int N, QuantScratch& s,
                          QuantPrefill prefill) {
  PROFILE("linear_quant");
  const int O = w.O, I = w.I;
  if (N <= 0) return;
  const bool avx2 = use_avx2();
  if (prefill == QuantPrefill::auto_) prefill = N >= kDequantGemmRows ? QuantPrefill::dequant_gemm : QuantPrefill::dot;
  if (prefill == QuantPrefill::dequant_gemm) {
    // Dequantise W [O, I] to fp32 and run the fp32 GEMM (BLAS, multithreaded).
    s.wtile.resize((size_t)O * I);
    const size_t rb = w.row_bytes();
#pragma omp parallel for schedule(static)
    for (int o = 0; o < O; o++) {
      if (avx2 && !w.packed && w.type != QuantType::q4_k)
        dequantize_row_avx2(w.type, w.data + (size_t)o * rb, I, s.wtile.data() + (size_t)o * I);
      else dequantize_matrix_row(w, o, s.wtile.data() + (size_t)o * I);
    }
    linear_forward(out, in, s.wtile.data(), bias, N, I, O, WeightLayout::out_in);
    return;
  }
  if (w.amx) {
    // The activations rounded to bf16, a batch's rows padded to a multiple of 32 with zeros (decode
    // runs one-row tiles).
    const size_t rows = N == 1 ? 1 : (size_t)(N + 31) / 32 * 32, need = rows * I * sizeof(uint16_t);
    if (s.act.size() < need) s.act.resize(need);
    uint16_t* xb = reinterpret_cast<uint16_t*>(s.act.data());
    to_bf16_rows(in, (size_t)N * I, xb);
    std::memset(xb + (size_t)N * I, 0, (rows - N) * I * sizeof(uint16_t));
    // Each thread one contiguous run of whole groups (its weights stream once per pass).
    const int groups = (O + kPack16Rows - 1) / kPack16Rows;
#pragma omp parallel
    {
      const int nt = omp_get_num_threads(), t = omp_get_thread_num(), per = (groups + nt - 1) / nt;
      const int o0 = std::min(O, t * per * kPack16Rows), o1 = std::min(O, (t + 1) * per * kPack16Rows);
      if (o0 < o1) {
        bf16_rows_amx(w, o0, o1, xb, N, out, O);
        if (bias)
          for (int n = 0; n < N; n++)
            for (int o = o0; o < o1; o++) out[(size_t)n * O + o] += bias[o];
      }
    }
    return;
  }
  ActQ8 x{nullptr, nullptr, nullptr, I / kQuantBlock};
  if (!is_float16(w.type)) {
    // [N][nb*32] int8 (rows padded to a multiple of 16 for the AMX tiles), [N][nb] fp32 scales,
    // [N][nb] int32 sums, in one buffer.
    const size_t qbytes = (size_t)(N + 15) / 16 * 16 * I, sbytes = (size_t)N * x.nb * 4;
    const size_t need = qbytes + 2 * sbytes + 64;
    if (s.act.size() < need) s.act.resize(need);
    int8_t* qs = reinterpret_cast<int8_t*>(s.act.data());
    float* d = reinterpret_cast<float*>(s.act.data() + (qbytes + 63) / 64 * 64);
    int32_t* sum = reinterpret_cast<int32_t*>(d + (size_t)N * x.nb);
    for (int n = 0; n < N; n++) {
      const size_t nb = (size_t)n * x.nb;
      if (avx2) quantize_act_avx2(in + (size_t)n * I, x.nb, qs + (size_t)n * I, d + nb, sum + nb);
      else quantize_act_scalar(in + (size_t)n * I, x.nb, qs + (size_t)n * I, d + nb, sum + nb);
    }
    x.qs = qs, x.d = d, x.sum = sum;
    std::memset(qs + (size_t)N * I, 0, qbytes - (size_t)N * I);
  }
  const bool int8 = w.type == QuantType::q8_0 || w.type == QuantType::q4_0;
  if (int8 && avx2 && w.packed && N >= kAmxInt8Rows && w.O >= 32 && amx_available(w.type)) {
    // Each thread a contiguous run of whole supergroups of 32 rows; the rest (O % 32) by the
    // AVX2 kernels, split likewise.
    const int super = w.O / 32;
#pragma omp parallel
    {
      const int nt = omp_get_num_threads(), t = omp_get_thread_num(), per = (super + nt - 1) / nt;
      const int o0 = std::min(super, t * per) * 32, o1 = std::min(super, (t + 1) * per) * 32;
      if (o0 < o1) int8_rows_amx(w, o0, o1, x, N, out, O);
      if (t == nt - 1 && super * 32 < O) dot_rows_avx2(w, super * 32, O, x, N, out, O);
#pragma omp barrier
      if (bias) {
        const int b0 = (int)((int64_t)O * t / nt), b1 = (int)((int64_t)O * (t + 1) / nt);
        for (int n = 0; n < N; n++)
          for (int o = b0; o < b1; o++) out[(size_t)n * O + o] += bias[o];
      }
    }
    return;
  }
  // Runs of 16 output rows (two int8 groups) or 32 (one bf16 / f16 group): 64 or 128 bytes of each
  // output row per thread, no false sharing.
  const bool vnni_gemv = N == 1 && !is_float16(w.type) && avx2 && w.packed && int8_vnni_available();
  const int kRun = std::max(2 * kPackRows, pack_group_rows(w.type));
  const int runs = (O + kRun - 1) / kRun;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < runs; r++) {
    const int o0 = r * kRun, o1 = std::min(O, o0 + kRun);
    if (is_float16(w.type)) {
      if (avx2) float16_rows_avx2(w, o0, o1, in, N, out, O);
      else float16_rows_scalar(w, o0, o1, in, N, out, O);
    } else {
      if (vnni_gemv) int8_gemv_avx512(w, o0, o1, x, out);
      else if (avx2) dot_rows_avx2(w, o0, o1, x, N, out, O);
      else dot_rows_scalar(w, o0, o1, x, N, out, O);
    }
    if (bias)
      for (int n = 0; n < N; n++)
        for (int o = o0; o < o1; o++) out[(size_t)n * O + o] += bias[o];
  }
}

}  // namespace mindllm::cpu
