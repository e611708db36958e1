#include "model/decoder.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/file_io.h"
#include "kernels/cpu/rope.h"
#include "model/cpu_ops.h"

namespace mindllm {

bool dump_requested(int layer, const char* name) {
  const char* spec = std::getenv("MINDLLM_DUMP");
  if (!spec) return false;
  const std::string want = std::to_string(layer) + "." + name, any = std::string("*.") + name;
  std::string s(spec);
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    const std::string item = s.substr(start, end - start);
    if (item == want || item == any) return true;
    start = end + 1;
  }
  return false;
}

// NumPy .npy version 1.0: magic, header length, a Python dict literal padded to 64 bytes.
void dump_tensor(int layer, const char* name, const std::vector<float>& data, int rows, int cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                       std::to_string(cols) + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
  const std::string path = "mindllm-dump-" + std::to_string(layer) + "." + name + ".npy";
  write_file_atomic(path, out);
  std::fprintf(stderr, "MINDLLM_DUMP: wrote %s [%d, %d]\n", path.c_str(), rows, cols);
}

void CpuOps::rope(float* qkv, int B, int T, int pos0, bool backward, const int32_t* positions) const {
  if (!cfg.rotary()) return;
  const int Q = cfg.q_dim(), QKV = Q + 2 * cfg.kv_dim();
  auto f = backward ? cpu::rope_backward : cpu::rope_forward;
  f(qkv, B, T, cfg.n_heads, cfg.head_dim, QKV, cfg.rot_dim(), cfg.rope_theta, pos0, positions);
  f(qkv + Q, B, T, cfg.n_kv_heads, cfg.head_dim, QKV, cfg.rot_dim(), cfg.rope_theta, pos0, positions);
}

}  // namespace mindllm
