// The decoder block, forward and backward, written once for every backend and every use: CPU
// training (model/model.cpp), GPU training (model/cuda/cuda_model.cpp) and inference against a
// K/V cache (model/engine.cpp). Pre-norm residual blocks, or DeepNorm post-norm blocks
//   x = norm(alpha x + f(x))  when cfg.deepnorm.
//
// The block is a template over `Ops`, a small struct that binds one backend's kernels (same
// signatures on kernels/cpu and kernels/cuda) to one model's weights and gradients:
//
//   using Act = float | bf16;                    // activation element type
//   const ModelConfig& cfg;  const ParamLayout& layout;
//   void linear(Act* out, const Act* in, size_t w, size_t b, int N, int I, int O, cpu::WeightLayout);
//   void linear_backward(Act* din, const Act* dout, const Act* in, size_t w, size_t b, int N, int I, int O,
//                        cpu::WeightLayout);             // din overwritten, parameter grads +=
//   void norm(Act* out, float* mean, float* rstd, const Act* in, size_t w, size_t b, int N);
//   void norm_backward(Act* din, const Act* dout, const Act* in, const float* mean, const float* rstd,
//                      size_t w, size_t b, int N);        // din +=
//   void add_scaled(Act* y, const Act* x, float alpha, size_t n);     // y += alpha x
//   void zero(Act* p, size_t n);  void copy(Act* dst, const Act* src, size_t n);
//   void activation(Act* act, const Act* fc, int N);                  // act = f(fc) or glu(fc)
//   void activation_backward(Act* d_fc, const Act* d_act, const Act* fc, int N);  // d_fc overwritten
//   void attend(int l, Act* att, Act* qkv, float* stats, int N);      // RoPE (in place) + attention
//   void attend_backward(int l, Act* d_qkv, const Act* d_att, const Act* qkv, const Act* att,
//                        const float* stats, int N);      // d_qkv overwritten, through RoPE too
//   bool recompute_mlp() const;       // fc/act are shared scratch: recompute them in the backward
//   std::vector<float> to_host(const Act* p, size_t n) const;          // for MINDLLM_DUMP
//
// Shapes: N rows; C = hidden, Q = n_heads * head_dim, KV = n_kv_heads * head_dim, H = intermediate,
// F = 2H for gated MLPs (gate|up from one GEMM) else H.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/params.h"

namespace mindllm {

// One layer's activations for a pass over N rows: pointers into the caller's buffers (training
// keeps one set per layer for the backward; inference reuses one set for every layer).
// Pre-norm uses x_norm and n2; DeepNorm uses r1 and r2 instead.
template <typename A>
struct LayerActs {
  A* x_norm = nullptr;                           // [N, C]  norm1(x)                (pre-norm)
  float *n1_mean = nullptr, *n1_rstd = nullptr;  // [N]     norm1 statistics
  A* qkv = nullptr;                              // [N, Q + 2 KV]  q|k|v rows, after RoPE
  float* att_stats = nullptr;                    // the attention op's saved statistics
  A* att = nullptr;                              // [N, Q]  attention output
  A* r1 = nullptr;                               // [N, C]  alpha x + attn          (DeepNorm)
  A* h = nullptr;                                // [N, C]  after the attention sub-block
  A* n2 = nullptr;                               // [N, C]  norm2(h)                (pre-norm)
  float *n2_mean = nullptr, *n2_rstd = nullptr;  // [N]
  A* fc = nullptr;                               // [N, F]  up (and gate) projection
  A* act = nullptr;                              // [N, H]  activation
  A* r2 = nullptr;                               // [N, C]  alpha h + mlp           (DeepNorm)
};

// Backward scratch shared by every layer.
template <typename A>
struct BlockGrads {
  A* d_tmp;  // [N, C]  gradient at a sub-block's input
  A* d_h;    // [N, C]  (DeepNorm)
  A* d_r;    // [N, C]  (DeepNorm)
  A* d_qkv;  // [N, Q + 2 KV]
  A* d_att;  // [N, Q]
  A* d_fc;   // [N, F]
  A* d_act;  // [N, H]
};

// Rows x columns of each named intermediate, for the debug dump.
struct DecoderDims {
  int C, Q, KV, H, F;
  explicit DecoderDims(const ModelConfig& c)
      : C(c.hidden), Q(c.q_dim()), KV(c.kv_dim()), H(c.intermediate),
        F(c.gated_mlp ? 2 * c.intermediate : c.intermediate) {}
};

// MINDLLM_DUMP=<layer>.<name>[,<layer>.<name>...] (e.g. "3.qkv,0.h", "*.att"): writes that
// intermediate of every forward pass as mindllm-dump-<layer>.<name>.npy (float32, [rows, cols])
// in the current directory, so a parity mismatch is traced to one layer and op. Names: x_norm,
// qkv, att, r1, h, n2, fc, act, r2, out.
bool dump_requested(int layer, const char* name);
void dump_tensor(int layer, const char* name, const std::vector<float>& data, int rows, int cols);

template <class Ops, typename A>
void dump_if_requested(const Ops& ops, int l, const char* name, const A* p, int rows, int cols) {
  if (p && dump_requested(l, name)) dump_tensor(l, name, ops.to_host(p, (size_t)rows * cols), rows, cols);
}

// act = activation(fc = mlp_in · Wfc + bfc).
template <class Ops, typename A>
void mlp_up(Ops& ops, const LayerOffsets& o, const LayerActs<A>& a, const A* mlp_in, int N) {
  const DecoderDims d(ops.cfg);
  ops.linear(a.fc, mlp_in, o.wfc, o.bfc, N, d.C, d.F, ops.layout.linear_layout);
  ops.activation(a.act, a.fc, N);
}

// out[N, C] = block_l(x[N, C]); out may be x (inference runs in place).
template <class Ops, typename A>
void block_forward(Ops& ops, int l, int N, const LayerActs<A>& a, const A* x, A* out) {
  const ModelConfig& cfg = ops.cfg;
  const DecoderDims d(cfg);
  const LayerOffsets& o = ops.layout.layers[l];
  const auto wl = ops.layout.linear_layout;
  const size_t NC = (size_t)N * d.C;
  const bool deep = cfg.deepnorm;
  const float alpha = deep ? cfg.deepnorm_alpha : 1.0f;

  // Attention sub-block: h = x + attn(norm1(x)), or h = norm1(alpha x + attn(x)).
  const A* attn_in = x;
  if (!deep) {
    ops.norm(a.x_norm, a.n1_mean, a.n1_rstd, x, o.norm1_w, o.norm1_b, N);
    attn_in = a.x_norm;
  }
  ops.linear(a.qkv, attn_in, o.wqkv, o.bqkv, N, d.C, d.Q + 2 * d.KV, wl);
  ops.attend(l, a.att, a.qkv, a.att_stats, N);
  A* r1 = deep ? a.r1 : a.h;
  ops.linear(r1, a.att, o.wo, o.bo, N, d.Q, d.C, wl);
  ops.add_scaled(r1, x, alpha, NC);
  if (deep) ops.norm(a.h, a.n1_mean, a.n1_rstd, r1, o.norm1_w, o.norm1_b, N);

  // MLP sub-block: out = h + mlp(norm2(h)), or out = norm2(alpha h + mlp(h)).
  const A* mlp_in = a.h;
  if (!deep) {
    ops.norm(a.n2, a.n2_mean, a.n2_rstd, a.h, o.norm2_w, o.norm2_b, N);
    mlp_in = a.n2;
  }
  mlp_up(ops, o, a, mlp_in, N);
  A* r2 = deep ? a.r2 : out;
  ops.linear(r2, a.act, o.wproj, o.bproj, N, d.H, d.C, wl);
  ops.add_scaled(r2, a.h, alpha, NC);
  if (deep) ops.norm(out, a.n2_mean, a.n2_rstd, r2, o.norm2_w, o.norm2_b, N);

  if (std::getenv("MINDLLM_DUMP")) {
    const int QKV = d.Q + 2 * d.KV;
    dump_if_requested(ops, l, "x_norm", deep ? nullptr : a.x_norm, N, d.C);
    dump_if_requested(ops, l, "qkv", a.qkv, N, QKV);
    dump_if_requested(ops, l, "att", a.att, N, d.Q);
    dump_if_requested(ops, l, "r1", deep ? a.r1 : nullptr, N, d.C);
    dump_if_requested(ops, l, "h", a.h, N, d.C);
    dump_if_requested(ops, l, "n2", deep ? nullptr : a.n2, N, d.C);
    dump_if_requested(ops, l, "fc", a.fc, N, d.F);
    dump_if_requested(ops, l, "act", a.act, N, d.H);
    dump_if_requested(ops, l, "r2", deep ? a.r2 : nullptr, N, d.C);
    dump_if_requested(ops, l, "out", static_cast<const A*>(out), N, d.C);
  }
}

// The MLP's backward: g.d_tmp = dL/d(mlp_in) from dout = dL/d(mlp output).
template <class Ops, typename A>
void mlp_backward(Ops& ops, const LayerOffsets& o, const LayerActs<A>& a, const BlockGrads<A>& g, const A* dout,
                  const A* mlp_in, int N) {
  const DecoderDims d(ops.cfg);
  const auto wl = ops.layout.linear_layout;
  if (ops.recompute_mlp()) mlp_up(ops, o, a, mlp_in, N);  // the shared buffers hold another layer's
  ops.linear_backward(g.d_act, dout, a.act, o.wproj, o.bproj, N, d.H, d.C, wl);
  ops.activation_backward(g.d_fc, g.d_act, a.fc, N);
  ops.linear_backward(g.d_tmp, g.d_fc, mlp_in, o.wfc, o.bfc, N, d.C, d.F, wl);
}

// The attention sub-block's backward: g.d_tmp = dL/d(attn_in) from dout = dL/d(attention output).
template <class Ops, typename A>
void attn_backward(Ops& ops, int l, const LayerActs<A>& a, const BlockGrads<A>& g, const A* dout, const A* attn_in,
                   int N) {
  const DecoderDims d(ops.cfg);
  const LayerOffsets& o = ops.layout.layers[l];
  const auto wl = ops.layout.linear_layout;
  ops.linear_backward(g.d_att, dout, a.att, o.wo, o.bo, N, d.Q, d.C, wl);
  ops.attend_backward(l, g.d_qkv, g.d_att, a.qkv, a.att, a.att_stats, N);
  ops.linear_backward(g.d_tmp, g.d_qkv, attn_in, o.wqkv, o.bqkv, N, d.C, d.Q + 2 * d.KV, wl);
}

// On entry d_res holds dL/d(output of layer l); on exit dL/d(input x of layer l). Parameter
// gradients accumulate through the Ops.
template <class Ops, typename A>
void block_backward(Ops& ops, int l, int N, const LayerActs<A>& a, const A* x, A* d_res, const BlockGrads<A>& g) {
  const ModelConfig& cfg = ops.cfg;
  const LayerOffsets& o = ops.layout.layers[l];
  const size_t NC = (size_t)N * cfg.hidden;
  if (!cfg.deepnorm) {
    // out = h + mlp(norm2(h));  h = x + attn(norm1(x)). d_res becomes dL/dh (the residual's
    // gradient plus the MLP branch's), then dL/dx: the branches only read it.
    mlp_backward(ops, o, a, g, d_res, a.n2, N);
    ops.norm_backward(d_res, g.d_tmp, a.h, a.n2_mean, a.n2_rstd, o.norm2_w, o.norm2_b, N);
    attn_backward(ops, l, a, g, d_res, a.x_norm, N);
    ops.norm_backward(d_res, g.d_tmp, x, a.n1_mean, a.n1_rstd, o.norm1_w, o.norm1_b, N);
  } else {
    // out = norm2(r2), r2 = alpha h + mlp(h);  h = norm1(r1), r1 = alpha x + attn(x)
    const float alpha = cfg.deepnorm_alpha;
    ops.zero(g.d_r, NC);
    ops.norm_backward(g.d_r, d_res, a.r2, a.n2_mean, a.n2_rstd, o.norm2_w, o.norm2_b, N);
    mlp_backward(ops, o, a, g, g.d_r, a.h, N);
    ops.copy(g.d_h, g.d_tmp, NC);
    ops.add_scaled(g.d_h, g.d_r, alpha, NC);
    ops.zero(g.d_r, NC);
    ops.norm_backward(g.d_r, g.d_h, a.r1, a.n1_mean, a.n1_rstd, o.norm1_w, o.norm1_b, N);
    attn_backward(ops, l, a, g, g.d_r, x, N);
    ops.copy(d_res, g.d_tmp, NC);
    ops.add_scaled(d_res, g.d_r, alpha, NC);
  }
}

}  // namespace mindllm
