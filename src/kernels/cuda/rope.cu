#include "kernels/cuda/rope.h"

#include "kernels/cuda/common.cuh"

namespace mindllm::cuda {

namespace {

// One block per row; thread i < rot/2 rotates pair (i, i + rot/2) of every head. The angle is
// computed as the CPU (and Hugging Face) computes it in float32: inv_freq = 1 / theta^(2i/rot),
// a = pos * inv_freq. theta^e and cos/sin go through double and round once, so they equal the
// correctly rounded float values the CPU's libm gives (a 1-ulp difference in inv_freq would
// shift the angle at position 4096 by ~1e-4).
template <typename T>
__global__ void rope_kernel(T* x, int T_, int H, int head_dim, int row_stride, int rot_dim, float theta, int pos_offset,
                            const int32_t* positions, float sign) {
  const int r = blockIdx.x, half = rot_dim / 2;
  const float pos = static_cast<float>((positions ? positions[r] : r % T_) + pos_offset);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(rot_dim);
    const float inv_freq = 1.0f / static_cast<float>(pow(static_cast<double>(theta), static_cast<double>(e)));
    const float a = pos * inv_freq;
    double sd, cd;
    sincos(static_cast<double>(a), &sd, &cd);
    const float c = static_cast<float>(cd), s = sign * static_cast<float>(sd);
    for (int h = 0; h < H; h++) {
      T* v = x + (size_t)r * row_stride + (size_t)h * head_dim;
      float p = to_float(v[i]), q = to_float(v[i + half]);
      v[i] = from_float<T>(p * c - q * s);
      v[i + half] = from_float<T>(q * c + p * s);
    }
  }
}

template <typename T>
void apply(T* x, int B, int T_, int H, int head_dim, int row_stride, int rot_dim, float theta, int pos_offset,
           const int32_t* positions, float sign) {
  const int half = rot_dim / 2;
  if (half == 0 || B * T_ <= 0) return;
  const int threads = half >= 128 ? 128 : (half + 31) / 32 * 32;
  rope_kernel<T>
      <<<B * T_, threads, 0, stream()>>>(x, T_, H, head_dim, row_stride, rot_dim, theta, pos_offset, positions, sign);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void rope_forward(float* x, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta, int pos_offset,
                  const int32_t* positions) {
  apply(x, B, T, H, head_dim, row_stride, rot_dim, theta, pos_offset, positions, 1.0f);
}
void rope_forward(bf16* x, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta, int pos_offset,
                  const int32_t* positions) {
  apply(x, B, T, H, head_dim, row_stride, rot_dim, theta, pos_offset, positions, 1.0f);
}
void rope_backward(float* dx, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                   int pos_offset, const int32_t* positions) {
  apply(dx, B, T, H, head_dim, row_stride, rot_dim, theta, pos_offset, positions, -1.0f);
}
void rope_backward(bf16* dx, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                   int pos_offset, const int32_t* positions) {
  apply(dx, B, T, H, head_dim, row_stride, rot_dim, theta, pos_offset, positions, -1.0f);
}

}  // namespace mindllm::cuda
