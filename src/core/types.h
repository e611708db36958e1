// Kernel-neutral types every layer shares: the token id, where a model runs (Device), the
// precision of its matrix multiplies (Precision) and the MLP activation (Activation). Kernels,
// models, trainers, the CLI and the server all name these; none of them owns them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mindllm {

// A vocabulary index: what the tokenizer produces and the model, data shards and server consume.
using TokenId = int32_t;

enum class Device { cpu, cuda };
// Matrix multiplies: fp32, or bf16 operands with fp32 accumulation (fp32 master weights).
enum class Precision { fp32, bf16 };

// gelu_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (HF "gelu_new", "gelu_pytorch_tanh")
// gelu_erf:  0.5 x (1 + erf(x / sqrt 2))                       (HF "gelu")
// silu:      x * sigmoid(x)                                     (HF "silu", SwiGLU)
enum class Activation { gelu_tanh, gelu_erf, silu };

// Elements of the inference K/V cache: fp32; bf16 (round to nearest even); or q8_0, llama.cpp's
// int8 blocks (32 values -> { fp16 d; int8 q[32] }, 34 bytes, value = d * q), a row holding
// n / 32 blocks. A cache row of n values takes kv_row_bytes(t, n) bytes.
enum class KvType : uint8_t { f32, bf16, q8_0 };
constexpr int kKvQ8Block = 32;
constexpr size_t kv_row_bytes(KvType t, size_t n) {
  return t == KvType::f32 ? 4 * n : t == KvType::bf16 ? 2 * n : n / kKvQ8Block * (2 + kKvQ8Block);
}

constexpr const char* name(Device d) { return d == Device::cuda ? "cuda" : "cpu"; }
constexpr const char* name(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }
constexpr const char* name(KvType t) { return t == KvType::f32 ? "f32" : t == KvType::bf16 ? "bf16" : "q8_0"; }

inline std::optional<Device> device_from_name(std::string_view s) {
  if (s == "cpu") return Device::cpu;
  if (s == "cuda") return Device::cuda;
  return std::nullopt;
}
inline std::optional<KvType> kv_type_from_name(std::string_view s) {
  for (KvType t : {KvType::f32, KvType::bf16, KvType::q8_0})
    if (s == name(t)) return t;
  return std::nullopt;
}
inline std::optional<Precision> precision_from_name(std::string_view s) {
  if (s == "fp32") return Precision::fp32;
  if (s == "bf16") return Precision::bf16;
  return std::nullopt;
}

}  // namespace mindllm
