// Element types and conversions (bf16 and IEEE half <-> float), portable and exact.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace mindllm {

enum class DType { f32, bf16, f16, i32, i64, u8 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // safetensors spelling: F32, BF16, F16, I32, I64, U8
bool dtype_from_name(const std::string& name, DType* out);

inline float bf16_to_float(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, NaN kept NaN (as PyTorch does).
inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

}  // namespace mindllm
