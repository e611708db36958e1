// Causal attention through cuDNN's fused flash attention (the cuDNN frontend's SDPA graphs), the
// alternative to kernels/cuda/flash_attention.h that issue 8 asks to measure against it. Same
// contract as flash_attention_forward/backward: bf16 q/k/v rows with strides (offsets into one
// packed qkv row), grouped-query heads, any scale (GPT-Neo: 1), local windows (t - s < W), an fp32
// logsumexp per query row (natural log) saved by the forward for the backward. The backward asks
// cuDNN for its deterministic algorithm (same bytes on every run, as the rest of the GPU path).
//
// cuDNN is optional twice over: the build needs its headers and the frontend's (pip packages
// nvidia-cudnn-cu13 and nvidia-cudnn-frontend; CMake option MINDLLM_CUDNN), and the library
// (libcudnn.so.9) is loaded at run time, so a binary built with cuDNN still runs without it.
// cudnn_attention_available() says which case holds, with the reason.
#pragma once
#include <string>

#include "kernels/cpu/attention.h"
#include "kernels/cuda/device.h"

namespace mindllm::cuda {

// True when this build has cuDNN support and libcudnn.so.9 loads (MINDLLM_CUDNN_LIB if set, then
// the loader's path, then the directory CMake found it in at build time); otherwise false with
// the reason.
bool cudnn_attention_available(std::string* why = nullptr);

// True when cuDNN has an engine for this shape (checked once per shape by building its graphs);
// also allocates the shape's workspace, so that memory is already taken when the caller plans.
bool cudnn_attention_supported(const cpu::AttentionShape& s, std::string* why = nullptr);

// As flash_attention_forward: out [B*T] rows of Hq x D (stride ldo) and lse [B, Hq, T], overwritten.
void cudnn_attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                             const cpu::AttentionShape& s);

// As flash_attention_backward (no delta scratch: cuDNN keeps its own in its workspace).
void cudnn_attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* out, const float* lse,
                              const bf16* q, const bf16* k, const bf16* v, const cpu::AttentionShape& s);

}  // namespace mindllm::cuda
