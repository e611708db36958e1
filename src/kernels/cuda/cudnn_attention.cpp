#include "kernels/cuda/cudnn_attention.h"

#include "core/error.h"

#if MINDLLM_CUDNN
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <cudnn_frontend.h>

// The frontend calls cuDNN through this handle (NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING).
namespace cudnn_frontend {
void* cudnn_dlhandle = nullptr;
}
#endif

namespace mindllm::cuda {

#if MINDLLM_CUDNN

namespace {

namespace fe = cudnn_frontend;
using cpu::AttentionShape;

// Tensor ids of the variant packs.
enum Uid : int64_t { kQ = 1, kK, kV, kO, kStats, kDO, kDQ, kDK, kDV };

struct Library {
  std::string why;  // empty: loaded
  cudnnHandle_t handle = nullptr;
};

// MINDLLM_CUDNN_LIB when set, then libcudnn.so.9 by the loader's search path, then where CMake
// found it (the pip wheel's folder, which is on no search path).
Library& library() {
  static Library lib = [] {
    Library l;
    std::vector<std::string> tries = {"libcudnn.so.9", std::string(MINDLLM_CUDNN_LIBDIR) + "/libcudnn.so.9"};
    if (const char* env = std::getenv("MINDLLM_CUDNN_LIB")) tries.insert(tries.begin(), env);
    for (const std::string& name : tries)
      if ((fe::cudnn_dlhandle = dlopen(name.c_str(), RTLD_NOW | RTLD_GLOBAL))) break;
    if (!fe::cudnn_dlhandle) {
      l.why = "libcudnn.so.9 not found (pip install nvidia-cudnn-cu13, or set MINDLLM_CUDNN_LIB to its path)";
      return l;
    }
    if (!available()) {
      l.why = device_description();  // "no GPU"
      return l;
    }
    try {
      if (fe::detail::create_handle(&l.handle) != CUDNN_STATUS_SUCCESS) l.why = "cudnnCreate failed";
      else if (fe::detail::set_stream(l.handle, stream()) != CUDNN_STATUS_SUCCESS) l.why = "cudnnSetStream failed";
    } catch (const std::exception& e) { l.why = std::string("cuDNN: ") + e.what(); }
    return l;
  }();
  return lib;
}

// Forward and backward graphs of one shape (sizes, strides, scale, window), built on first use.
struct Plans {
  std::shared_ptr<fe::graph::Graph> fwd, bwd;
  int64_t fwd_ws = 0, bwd_ws = 0;
  std::string why;  // empty: both graphs built
};

std::string text(const AttentionShape& s) {
  return "B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " Hq=" + std::to_string(s.Hq) +
         " Hkv=" + std::to_string(s.Hkv) + " D=" + std::to_string(s.D) + " window=" + std::to_string(s.window);
}

std::shared_ptr<fe::graph::Graph> new_graph() {
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(fe::DataType_t::BFLOAT16)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  return g;
}

// t as a [B, heads, T, D] view of rows with stride ld (head h at column h * D).
fe::graph::Tensor_attributes& set_rows(fe::graph::Tensor_attributes& t, int64_t uid, const AttentionShape& s,
                                       int64_t heads, int64_t ld) {
  return t.set_uid(uid).set_dim({s.B, heads, s.T, s.D}).set_stride({(int64_t)s.T * ld, s.D, ld, 1});
}

// An input of the graph in that view.
std::shared_ptr<fe::graph::Tensor_attributes> rows(fe::graph::Graph& g, const char* name, int64_t uid,
                                                   const AttentionShape& s, int64_t heads, int64_t ld) {
  auto t = g.tensor(fe::graph::Tensor_attributes().set_name(name));
  set_rows(*t, uid, s, heads, ld);
  return t;
}

// The logsumexp tensor [B, Hq, T, 1], fp32 (the layout of flash attention's lse).
void set_stats(fe::graph::Tensor_attributes& t, const AttentionShape& s) {
  t.set_uid(kStats)
      .set_data_type(fe::DataType_t::FLOAT)
      .set_dim({s.B, s.Hq, s.T, 1})
      .set_stride({(int64_t)s.Hq * s.T, s.T, 1, 1});
}

// validate, lower, pick an engine and build it; the first failure's message, or "".
std::string build(fe::graph::Graph& g, cudnnHandle_t h, int64_t* workspace) {
  fe::error_t st = g.validate();
  if (st.is_good()) st = g.build_operation_graph(h);
  if (st.is_good()) st = g.create_execution_plans({fe::HeurMode_t::A});
  if (st.is_good()) st = g.check_support(h);
  if (st.is_good()) st = g.build_plans(h);
  if (st.is_good()) st = g.get_workspace_size(*workspace);
  return st.is_good() ? "" : st.get_message();
}

Plans make_plans(const AttentionShape& s, cudnnHandle_t h) {
  Plans p;
  const float scale = s.scale;
  {
    auto g = new_graph();
    auto q = rows(*g, "q", kQ, s, s.Hq, s.ldq), k = rows(*g, "k", kK, s, s.Hkv, s.ldk),
         v = rows(*g, "v", kV, s, s.Hkv, s.ldv);
    auto opt = fe::graph::SDPA_attributes().set_name("attention").set_generate_stats(true).set_attn_scale(scale);
    opt.set_causal_mask(true);
    if (s.window > 0) opt.set_sliding_window_length(s.window);
    auto [o, stats] = g->sdpa(q, k, v, opt);
    set_rows(*o, kO, s, s.Hq, s.ldo).set_output(true);
    stats->set_output(true);
    set_stats(*stats, s);
    if (std::string e = build(*g, h, &p.fwd_ws); !e.empty()) {
      p.why = "forward: " + e;
      return p;
    }
    p.fwd = g;
  }
  {
    auto g = new_graph();
    auto q = rows(*g, "q", kQ, s, s.Hq, s.ldq), k = rows(*g, "k", kK, s, s.Hkv, s.ldk),
         v = rows(*g, "v", kV, s, s.Hkv, s.ldv), o = rows(*g, "o", kO, s, s.Hq, s.ldo),
         dout = rows(*g, "do", kDO, s, s.Hq, s.ldo);
    auto stats = g->tensor(fe::graph::Tensor_attributes().set_name("stats"));
    set_stats(*stats, s);
    auto opt = fe::graph::SDPA_backward_attributes().set_name("attention_backward").set_attn_scale(scale);
    opt.set_causal_mask(true);
    opt.set_deterministic_algorithm(true);
    if (s.window > 0) opt.set_sliding_window_length(s.window);
    auto [dq, dk, dv] = g->sdpa_backward(q, k, v, o, dout, stats, opt);
    set_rows(*dq, kDQ, s, s.Hq, s.ldq).set_output(true);
    set_rows(*dk, kDK, s, s.Hkv, s.ldk).set_output(true);
    set_rows(*dv, kDV, s, s.Hkv, s.ldv).set_output(true);
    if (std::string e = build(*g, h, &p.bwd_ws); !e.empty()) {
      p.why = "backward: " + e;
      return p;
    }
    p.bwd = g;
  }
  return p;
}

using Key = std::tuple<int, int, int, int, int, int, int, int, int, uint32_t, int>;

const Plans& plans(const AttentionShape& s) {
  static auto& cache = *new std::map<Key, Plans>;  // never destroyed: no cuDNN calls during exit
  uint32_t scale_bits;
  std::memcpy(&scale_bits, &s.scale, 4);
  const Key key{s.B, s.T, s.Hq, s.Hkv, s.D, s.ldq, s.ldk, s.ldv, s.ldo, scale_bits, s.window};
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  Library& lib = library();
  Plans p;
  if (!lib.why.empty()) p.why = lib.why;
  else if (s.Hkv <= 0 || s.Hq % s.Hkv) p.why = "query heads must be a multiple of the kv heads";
  else {
    try {
      p = make_plans(s, lib.handle);
    } catch (const std::exception& e) {  // the frontend throws where a symbol or the backend fails
      p = Plans{};
      p.why = e.what();
    }
  }
  return cache.emplace(key, std::move(p)).first->second;
}

// cuDNN's scratch: one device buffer that only grows (the first step of each shape).
void* workspace(int64_t bytes) {
  static auto& ws = *new DeviceBuffer<char>;  // never freed: no cudaFree after the runtime shuts down
  if ((int64_t)ws.size() < bytes) ws = DeviceBuffer<char>((size_t)bytes);
  return ws.data();
}

const Plans& checked(const AttentionShape& s) {
  const Plans& p = plans(s);
  if (!p.why.empty()) internal_error("cuDNN attention, " + text(s) + ": " + p.why);
  return p;
}

void run(const fe::graph::Graph& g, std::unordered_map<int64_t, void*>& pack, int64_t ws, const char* what) {
  std::string err;
  try {
    auto st = g.execute(library().handle, pack, workspace(ws));
    if (st.is_bad()) err = st.get_message();
  } catch (const std::exception& e) {  // e.g. a backend symbol the loaded libcudnn lacks
    err = e.what();
  }
  if (!err.empty()) internal_error(std::string("cuDNN attention ") + what + ": " + err);
}

}  // namespace

bool cudnn_attention_available(std::string* why) {
  const Library& lib = library();
  if (why) *why = lib.why;
  return lib.why.empty();
}

bool cudnn_attention_supported(const AttentionShape& s, std::string* why) {
  const Plans& p = plans(s);
  if (why) *why = p.why;
  // The workspace now, not at the first step: a caller that checks free memory next (CudaModel)
  // then counts it (the deterministic backward's is B·Hq·T²·2 bytes).
  if (p.why.empty()) workspace(std::max(p.fwd_ws, p.bwd_ws));
  return p.why.empty();
}

void cudnn_attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                             const AttentionShape& s) {
  if (s.B <= 0 || s.T <= 0) return;
  const Plans& p = checked(s);
  std::unordered_map<int64_t, void*> pack = {
      {kQ, (void*)q}, {kK, (void*)k}, {kV, (void*)v}, {kO, (void*)out}, {kStats, (void*)lse}};
  run(*p.fwd, pack, p.fwd_ws, "forward");
}

void cudnn_attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* out, const float* lse,
                              const bf16* q, const bf16* k, const bf16* v, const AttentionShape& s) {
  if (s.B <= 0 || s.T <= 0) return;
  const Plans& p = checked(s);
  std::unordered_map<int64_t, void*> pack = {{kQ, (void*)q},   {kK, (void*)k},     {kV, (void*)v},
                                             {kO, (void*)out}, {kDO, (void*)dout}, {kStats, (void*)lse},
                                             {kDQ, (void*)dq}, {kDK, (void*)dk},   {kDV, (void*)dv}};
  run(*p.bwd, pack, p.bwd_ws, "backward");
}

#else  // built without cuDNN

bool cudnn_attention_available(std::string* why) {
  if (why) *why = "this build has no cuDNN (pip install nvidia-cudnn-cu13 nvidia-cudnn-frontend, then reconfigure)";
  return false;
}

bool cudnn_attention_supported(const cpu::AttentionShape&, std::string* why) { return cudnn_attention_available(why); }

static void unavailable() {
  std::string why;
  cudnn_attention_available(&why);
  internal_error("cuDNN attention: " + why);
}

void cudnn_attention_forward(bf16*, float*, const bf16*, const bf16*, const bf16*, const cpu::AttentionShape&) {
  unavailable();
}

void cudnn_attention_backward(bf16*, bf16*, bf16*, const bf16*, const bf16*, const float*, const bf16*, const bf16*,
                              const bf16*, const cpu::AttentionShape&) {
  unavailable();
}

#endif

}  // namespace mindllm::cuda
