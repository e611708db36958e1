// CPU emulation of cuda_bf16.h (tests/cuda/emu): bfloat16 with the GPU's conversions.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace emu {
inline float bf16_bits_to_float(uint16_t h) { return mindllm::bf16_to_float(h); }
// Round to nearest even (core/dtype.h); every NaN becomes the canonical 0x7FFF, as
// cvt.rn.bf16.f32 does (core/dtype.h keeps the NaN's payload, as PyTorch does).
inline uint16_t float_to_bf16_bits(float f) { return f != f ? 0x7fffu : mindllm::float_to_bf16(f); }
}  // namespace emu

struct __nv_bfloat16_raw {
  uint16_t x;
};

struct __nv_bfloat16 {
  uint16_t __x;
  __nv_bfloat16() = default;
  __nv_bfloat16(__nv_bfloat16_raw r) : __x(r.x) {}
  operator __nv_bfloat16_raw() const { return {__x}; }
  __nv_bfloat16(float f) : __x(emu::float_to_bf16_bits(f)) {}
  __nv_bfloat16(double f) : __x(emu::float_to_bf16_bits(static_cast<float>(f))) {}
  __nv_bfloat16(int i) : __x(emu::float_to_bf16_bits(static_cast<float>(i))) {}
  operator float() const { return emu::bf16_bits_to_float(__x); }
};
struct alignas(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};

inline float __bfloat162float(__nv_bfloat16 h) { return emu::bf16_bits_to_float(h.__x); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  __nv_bfloat16 r;
  r.__x = emu::float_to_bf16_bits(f);
  return r;
}
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
  return {__float2bfloat16_rn(a), __float2bfloat16_rn(b)};
}
