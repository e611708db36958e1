// AdamW over the flat fp32 buffers and the deterministic sum of squares (global gradient norm)
// on the GPU; same math as kernels/cpu/adamw.h (torch.optim.AdamW, decoupled decay). Master
// weights, gradients and both moments are fp32; the update can also write the bf16 compute copy
// of the weights in the same pass.
#pragma once
#include <cstddef>

#include "kernels/cpu/adamw.h"
#include "kernels/cuda/device.h"

namespace mindllm::cuda {

using cpu::AdamWParams;
using cpu::AdamWSpan;

// params, grads, m, v: device arrays of n floats. params_bf16 (optional, device, n values)
// receives bf16(params) after the update.
void adamw_update(float* params, const float* grads, float* m, float* v, size_t n, const AdamWParams& p,
                  float grad_scale = 1.0f, bf16* params_bf16 = nullptr);

// Many spans of the same flat buffers in one launch. `spans` is a DEVICE array of `count` spans
// (uploaded once when the parameter layout is planned); each block takes one span.
void adamw_update_spans(float* params, const float* grads, float* m, float* v, const AdamWSpan* spans, size_t count,
                        const AdamWParams& p, float grad_scale = 1.0f, bf16* params_bf16 = nullptr);

// The same with the gradient scale read from device memory (*grad_scale, written by clip_scale),
// so clipping needs no host round trip; a non-finite *grad_scale skips the update entirely.
void adamw_update(float* params, const float* grads, float* m, float* v, size_t n, const AdamWParams& p,
                  const float* grad_scale, bf16* params_bf16 = nullptr);
void adamw_update_spans(float* params, const float* grads, float* m, float* v, const AdamWSpan* spans, size_t count,
                        const AdamWParams& p, const float* grad_scale, bf16* params_bf16 = nullptr);

// Global-norm clipping on the device: *scale = min(1, clip / (sqrt(*sum_sq) + 1e-6)) (1 when
// clip == 0), computed in double as the CPU trainer does; NaN (skip) when *sum_sq or *loss
// (optional, device) is not finite.
void clip_scale(float* scale, const double* sum_sq, const double* loss, float clip);

// Sum of squares in double: fixed 64Ki-element chunks, each summed by one block in a fixed
// tree, the chunk sums added in a fixed order. Same bits every run for the same n (any GPU).
// This overload waits for the result (it returns it to the host).
double sum_of_squares(const float* x, size_t n);
// Leaves the sum in device memory (*out, one double): no synchronisation in the step loop.
void sum_of_squares(double* out, const float* x, size_t n);

}  // namespace mindllm::cuda
