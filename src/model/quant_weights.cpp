#include "model/quant_weights.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "core/huge_pages.h"
#include "core/safetensors.h"
#include "model/model.h"
#include "model/weights_io.h"

namespace mindllm {

namespace fs = std::filesystem;
using json = nlohmann::json;
using cpu::QuantType;

std::vector<LinearWeight> linear_weights(const ModelConfig& c, const ParamLayout& L) {
  const int C = c.hidden, H = c.intermediate, Q = c.q_dim(), KV = c.kv_dim(), F = c.gated_mlp ? 2 * H : H;
  const cpu::WeightLayout wl = L.linear_layout;
  std::vector<LinearWeight> v;
  for (const LayerOffsets& o : L.layers) {
    v.push_back({o.wqkv, Q + 2 * KV, C, wl, false});
    v.push_back({o.wo, C, Q, wl, false});
    v.push_back({o.wfc, F, C, wl, false});
    v.push_back({o.wproj, C, H, wl, false});
  }
  v.push_back({L.lm_head, c.vocab_size, C, cpu::WeightLayout::out_in, true});
  return v;
}

std::optional<QuantType> matrix_type(QuantType t, bool output, int64_t row_len) {
  if ((t == QuantType::q4_0 || t == QuantType::q4_k) && output) t = QuantType::q8_0;
  if (t == QuantType::q4_k && !cpu::quant_row_fits(t, row_len)) t = QuantType::q4_0;  // rows not whole 256s
  if (!cpu::quant_row_fits(t, row_len)) return std::nullopt;
  return t;
}

size_t QuantizedWeights::bytes() const {
  size_t n = 0;
  for (auto& [off, m] : by_offset) n += m.bytes;
  return n;
}

namespace {

// Row o of an [O, I] matrix whose storage is `layout`, into row[I].
void gather_row(float* row, const float* w, int o, int O, int I, cpu::WeightLayout layout) {
  if (layout == cpu::WeightLayout::out_in) {
    std::copy(w + (size_t)o * I, w + (size_t)(o + 1) * I, row);
  } else {
    for (int i = 0; i < I; i++) row[i] = w[(size_t)i * O + o];
  }
}

// [O, I] block rows of a matrix stored in `layout`. f16 holds |x| <= 65504 (larger rounds to
// infinity): a matrix beyond it is refused, naming `what` (bf16 has fp32's range).
std::vector<uint8_t> quantize_matrix(QuantType t, const float* w, int O, int I, cpu::WeightLayout layout,
                                     const std::string& what) {
  if (t == QuantType::f16) {
    float amax = 0.0f;
#pragma omp parallel for reduction(max : amax) schedule(static)
    for (int64_t i = 0; i < (int64_t)O * I; i++) amax = std::max(amax, std::fabs(w[i]));
    if (amax > 65504.0f)
      bad_input(what + ": a weight of magnitude " + std::to_string(amax) +
                " is beyond f16's range (65504); use bf16 weights");
  }
  const size_t rb = cpu::quant_row_bytes(t, I);
  std::vector<uint8_t> out(rb * O);
#pragma omp parallel
  {
    std::vector<float> row(I);
#pragma omp for schedule(static)
    for (int o = 0; o < O; o++) {
      gather_row(row.data(), w, o, O, I, layout);
      cpu::quantize_row(t, row.data(), I, out.data() + rb * o);
    }
  }
  return out;
}

// Bits kept, in order: q4_0 < q4_k < q8_0 < bf16 < f16.
int precision_rank(QuantType t) {
  switch (t) {
    case QuantType::q4_0: return 0;
    case QuantType::q4_k: return 1;
    case QuantType::q8_0: return 2;
    case QuantType::bf16: return 3;
    case QuantType::f16: return 4;
  }
  return 0;
}

// The block rows of matrix lw from `given` and their type: its parameters (those starting inside
// it, in offset order: q|k|v, gate|up) each given, in one type; else empty. All given but in
// several types (a llama.cpp Q4_K_M file's q4_K Q and K with a q6_K V): empty, and *mixed the
// type keeping the most bits, for the matrix to be quantised in from its fp32 values.
std::vector<uint8_t> given_rows(const QuantBlocks& given, const ParamLayout& L, const LinearWeight& lw, QuantType* t,
                                std::optional<QuantType>* mixed) {
  std::vector<const ParamSpec*> parts;
  for (const ParamSpec& s : L.specs)
    if (s.offset >= lw.offset && s.offset < lw.offset + (size_t)lw.O * lw.I) parts.push_back(&s);
  std::sort(parts.begin(), parts.end(), [](const ParamSpec* a, const ParamSpec* b) { return a->offset < b->offset; });
  std::vector<const FileBlocks*> blocks;
  for (const ParamSpec* s : parts) {
    auto it = given.find(s->name);
    if (it == given.end()) return {};
    blocks.push_back(&it->second);
  }
  if (blocks.empty()) return {};
  *t = blocks[0]->type;
  bool one_type = true;
  for (const FileBlocks* b : blocks) {
    one_type = one_type && b->type == *t;
    if (precision_rank(b->type) > precision_rank(*t)) *t = b->type;
  }
  if (!one_type) {
    *mixed = *t;
    return {};
  }
  std::vector<uint8_t> rows;
  for (const FileBlocks* b : blocks) rows.insert(rows.end(), b->rows.begin(), b->rows.end());
  if (parts.empty() || !cpu::quant_row_fits(*t, lw.I) || rows.size() != cpu::quant_row_bytes(*t, lw.I) * lw.O)
    return {};
  return rows;
}

}  // namespace

QuantBlocks read_quant_blocks(const std::string& dir) {
  QuantBlocks r;
  const std::string path = (fs::path(dir) / "model.safetensors").string();
  if (!quantized_dir_type(dir) || !path_exists(path)) return r;
  SafetensorsFile f(path);
  for (auto& [name, q] : parse_quant_metadata(f.metadata(), path)) {
    auto raw = f.raw(name);
    const int64_t rows = q.transposed ? q.shape[1] : q.shape[0], cols = q.transposed ? q.shape[0] : q.shape[1];
    if (raw.size() != cpu::quant_row_bytes(q.type, cols) * rows) continue;  // the fp32 loader has refused it
    r[name] = {q.type, std::vector<uint8_t>(raw.begin(), raw.end())};
  }
  return r;
}

std::shared_ptr<const QuantizedWeights> quantize_weights(const Model& model, QuantType type, const QuantBlocks* given) {
  auto q = std::make_shared<QuantizedWeights>();
  q->type = type;
  const float* p = model.params().data();
  struct Mat {
    LinearWeight lw;
    QuantType t;
    std::vector<uint8_t> given;  // the file's block rows, if it has them
  };
  std::vector<Mat> mats;
  size_t total = 0;
  for (const LinearWeight& lw : linear_weights(model.config(), model.layout())) {
    Mat m{lw, type, {}};
    std::optional<QuantType> mixed;
    if (given) m.given = given_rows(*given, model.layout(), lw, &m.t, &mixed);
    if (m.given.empty()) {
      std::optional<QuantType> t = matrix_type(mixed.value_or(type), lw.output, lw.I);
      if (!t) continue;  // stays fp32
      m.t = *t;
    }
    total += (cpu::quant_row_bytes(m.t, lw.I) * lw.O + 63) / 64 * 64;
    mats.push_back(std::move(m));
  }
  q->arena = huge_alloc(total);
  size_t at = 0;
  for (auto& [lw, t, rows] : mats) {
    QuantizedWeights::Matrix& m = q->by_offset[lw.offset];
    if (rows.empty()) {
      const ParamSpec* s = nullptr;  // the matrix's first parameter, for messages
      for (const ParamSpec& x : model.layout().specs)
        if (x.offset == lw.offset) s = &x;
      rows = quantize_matrix(t, p + lw.offset, lw.O, lw.I, lw.layout, s ? s->name : "a weight matrix");
    }
    uint8_t* dst = q->arena.get() + at;
    // The kernels' layout (kernels/cpu/quant.h): AMX tiles for bf16 where the CPU has them.
    const bool amx = t == QuantType::bf16 && cpu::amx_bf16_fits(lw.I);
    if (amx) cpu::pack_rows_amx(rows.data(), lw.O, lw.I, dst);
    else cpu::pack_rows(t, rows.data(), lw.O, lw.I, dst);
    m.bytes = rows.size();
    m.m = cpu::QuantMatrix{t, lw.O, lw.I, dst, true, amx};
    at += (rows.size() + 63) / 64 * 64;
    std::vector<uint8_t>().swap(rows);
  }
  return q;
}

std::optional<QuantType> weights_type_from_name(const std::string& name) {
  if (name == "f32") return std::nullopt;
  QuantType t;
  if (!cpu::quant_type_from_name(name, &t))
    bad_input(std::string("--weights must be f32, ") + cpu::quant_type_names() + ", got '" + name + "'");
  return t;
}

void write_quantized_dir(const Model& model, QuantType type, const std::string& tokenizer_src, const std::string& out,
                         Progress* progress, const QuantBlocks* given) {
  write_hf_dir(model, DType::f32, tokenizer_src, out);  // config, generation config, tokenizer files
  const ModelConfig& c = model.config();
  const ParamLayout& L = model.layout();
  // Which matrix (if any) each tensor is part of: its layout and whether it is the output projection.
  std::vector<LinearWeight> lws = linear_weights(c, L);
  std::vector<std::vector<uint8_t>> data(L.specs.size());
  std::vector<TensorToWrite> ts;
  json meta = json::object();
  for (size_t i = 0; i < L.specs.size(); i++) {
    const ParamSpec& s = L.specs[i];
    const float* p = model.params().data() + s.offset;
    if (s.shape.size() != 2) {
      ts.push_back({s.name, DType::f32, s.shape, p});
      continue;
    }
    bool transposed = false, output = s.offset == L.lm_head;
    for (const LinearWeight& lw : lws)
      if (lw.layout == cpu::WeightLayout::in_out && s.offset == lw.offset) transposed = true;
    const int64_t rows = transposed ? s.shape[1] : s.shape[0], cols = transposed ? s.shape[0] : s.shape[1];
    std::optional<QuantType> t = matrix_type(type, output, cols);
    if (!t) {
      ts.push_back({s.name, DType::f32, s.shape, p});
      continue;
    }
    const FileBlocks* g = nullptr;
    if (given && given->count(s.name)) g = &given->at(s.name);
    if (g && g->type == *t && g->rows.size() == cpu::quant_row_bytes(*t, cols) * rows) data[i] = g->rows;
    else
      data[i] = quantize_matrix(*t, p, (int)rows, (int)cols,
                                transposed ? cpu::WeightLayout::in_out : cpu::WeightLayout::out_in, s.name);
    if (progress) progress->update((double)(s.offset + s.numel) * 4e-6, s.name);
    ts.push_back({s.name, DType::u8, {rows, (int64_t)cpu::quant_row_bytes(*t, cols)}, data[i].data()});
    meta[s.name] = {{"type", cpu::quant_type_name(*t)}, {"shape", s.shape}, {"transposed", transposed}};
  }
  if (progress) progress->note("writing " + out);
  write_safetensors((fs::path(out) / "model.safetensors").string(), ts,
                    {{"format", "mindllm"}, {kQuantMetadataKey, meta.dump()}});
  json cfg = config_to_json(c);
  cfg["mindllm_quantization"] = {{"type", cpu::quant_type_name(type)}};
  write_file_atomic((fs::path(out) / "config.json").string(), cfg.dump(2) + "\n");
}

std::optional<QuantType> quantized_dir_type(const std::string& dir) {
  const std::string path = (fs::path(dir) / "config.json").string();
  if (dir.empty() || !path_exists(path)) return std::nullopt;
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::parse_error&) { bad_input(path + ": not valid JSON"); }
  if (!j.is_object() || !j.contains("mindllm_quantization")) return std::nullopt;
  const json& q = j["mindllm_quantization"];
  QuantType t;
  if (!q.is_object() || !q.contains("type") || !q["type"].is_string() ||
      !cpu::quant_type_from_name(q["type"].get<std::string>(), &t))
    bad_input(path + ": mindllm_quantization.type must be " + cpu::quant_type_names());
  return t;
}

std::map<std::string, QuantTensorInfo> parse_quant_metadata(const std::map<std::string, std::string>& meta,
                                                            const std::string& path) {
  std::map<std::string, QuantTensorInfo> r;
  auto it = meta.find(kQuantMetadataKey);
  if (it == meta.end()) return r;
  const std::string where = path + ": __metadata__." + kQuantMetadataKey;
  json j;
  try {
    j = json::parse(it->second);
  } catch (const json::parse_error&) { bad_input(where + " is not valid JSON"); }
  if (!j.is_object()) bad_input(where + " is not an object");
  for (auto& [name, v] : j.items()) {
    QuantTensorInfo q;
    if (!v.is_object() || !v.contains("type") || !v["type"].is_string() ||
        !cpu::quant_type_from_name(v["type"].get<std::string>(), &q.type))
      bad_input(where + "['" + name + "'].type must be " + cpu::quant_type_names());
    if (!v.contains("shape") || !v["shape"].is_array() || v["shape"].size() != 2)
      bad_input(where + "['" + name + "'].shape must be a 2-D shape");
    for (auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() <= 0 || d.get<int64_t>() > (int64_t{1} << 31))
        bad_input(where + "['" + name + "'].shape has a bad dimension");
      q.shape.push_back(d.get<int64_t>());
    }
    q.transposed = v.value("transposed", false);
    const int64_t cols = q.transposed ? q.shape[0] : q.shape[1];
    if (!cpu::quant_row_fits(q.type, cols))
      bad_input(where + "['" + name + "']: rows of " + std::to_string(cols) + " are not whole " +
                cpu::quant_type_name(q.type) + " blocks");
    r[name] = std::move(q);
  }
  return r;
}

void dequantize_tensor(const QuantTensorInfo& q, const uint8_t* data, size_t bytes, float* out, const std::string& path,
                       const std::string& name) {
  const int64_t rows = q.transposed ? q.shape[1] : q.shape[0], cols = q.transposed ? q.shape[0] : q.shape[1];
  const size_t rb = cpu::quant_row_bytes(q.type, cols);
  if (bytes != rb * (size_t)rows)
    bad_input(path + ": quantised tensor '" + name + "' holds " + std::to_string(bytes) + " bytes, expected " +
              std::to_string(rb * rows) + " for " + cpu::quant_type_name(q.type) + " " + shape_str(q.shape));
#pragma omp parallel
  {
    std::vector<float> row(cols);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      float* dst = q.transposed ? row.data() : out + r * cols;
      cpu::dequantize_row(q.type, data + rb * r, cols, dst);
      if (q.transposed)
        for (int64_t c = 0; c < cols; c++) out[c * rows + r] = row[c];
    }
  }
}

}  // namespace mindllm
