// Interop readers: the PyTorch .bin reader (zip + restricted pickle) on hand-built archives,
// including hostile ones and every truncation; GGUF writer/reader round trip and truncations;
// q8_0 quantisation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "test_tmp.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/gguf.h"
#include "core/torch_bin.h"
#include "kernels/cpu/quant.h"

using namespace mindllm;

namespace {

void put16(std::string& s, uint16_t v) { s.append(reinterpret_cast<const char*>(&v), 2); }
void put32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }

// A stored (uncompressed) zip as torch.save writes it: local headers, central directory, EOCD.
std::string make_zip(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out, cd;
  for (auto& [name, data] : entries) {
    uint32_t off = out.size();
    put32(out, 0x04034b50), put16(out, 20), put16(out, 0), put16(out, 0), put16(out, 0), put16(out, 0);
    put32(out, 0), put32(out, data.size()), put32(out, data.size()), put16(out, name.size()), put16(out, 0);
    out += name + data;
    put32(cd, 0x02014b50), put16(cd, 20), put16(cd, 20), put16(cd, 0), put16(cd, 0), put16(cd, 0), put16(cd, 0);
    put32(cd, 0), put32(cd, data.size()), put32(cd, data.size()), put16(cd, name.size()), put16(cd, 0);
    put16(cd, 0), put16(cd, 0), put16(cd, 0), put32(cd, 0), put32(cd, off);
    cd += name;
  }
  uint32_t cd_off = out.size();
  out += cd;
  put32(out, 0x06054b50), put16(out, 0), put16(out, 0), put16(out, entries.size()), put16(out, entries.size());
  put32(out, cd.size()), put32(out, cd_off), put16(out, 0);
  return out;
}

std::string binunicode(const std::string& s) {
  std::string o = "X";
  put32(o, s.size());
  return o + s;
}

// Pickle (protocol 2) of OrderedDict{name: _rebuild_tensor_v2(storage '0' of `numel` floats,
// offset, size, stride, False, OrderedDict())}.
std::string state_dict_pickle(const std::string& name, int numel, int offset, std::vector<int> size,
                              std::vector<int> stride, const std::string& storage_type = "FloatStorage",
                              const std::string& rebuild = "_rebuild_tensor_v2") {
  std::string p = "\x80\x02";
  p += "ccollections\nOrderedDict\n)R(";
  p += binunicode(name);
  p += "ctorch._utils\n" + rebuild + "\n(";
  p += "(" + binunicode("storage") + "ctorch\n" + storage_type + "\n" + binunicode("0") + binunicode("cpu");
  p += "J";
  put32(p, numel);
  p += "tQ";
  p += "J";
  put32(p, offset);
  p += "(";
  for (int d : size) p += "J", put32(p, d);
  p += "t(";
  for (int d : stride) p += "J", put32(p, d);
  p += "t\x89"
       "ccollections\nOrderedDict\n)Rt";
  p += "Ru.";
  return p;
}

std::string floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

std::string torch_file(const std::string& pkl, const std::string& storage) {
  return make_zip({{"archive/data.pkl", pkl}, {"archive/data/0", storage}, {"archive/version", "3\n"}});
}

std::span<const uint8_t> span(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

std::string error_of(const std::string& bytes) {
  try {
    TorchBinFile f(span(bytes), "t.bin");
    for (auto& [n, t] : f.tensors()) {
      std::vector<float> out(t.numel());
      f.read_f32(n, out.data());
    }
  } catch (const Error& e) {
    EXPECT_EQ(e.code, ExitCode::bad_input) << e.what();
    return e.what();
  }
  return "";
}

}  // namespace

TEST(TorchBin, ReadsContiguousAndStridedTensors) {
  std::vector<float> data = {0, 1, 2, 3, 4, 5, 6, 7};
  // [2, 3] at offset 1, contiguous
  std::string f = torch_file(state_dict_pickle("w", 8, 1, {2, 3}, {3, 1}), floats(data));
  TorchBinFile t(span(f), "t.bin");
  ASSERT_TRUE(t.has("w"));
  EXPECT_EQ(t.info("w").shape, (std::vector<int64_t>{2, 3}));
  std::vector<float> out(6);
  t.read_f32("w", out.data());
  EXPECT_EQ(out, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  // the transpose of a [3, 2] matrix: size [2, 3], stride [1, 2]
  std::string g = torch_file(state_dict_pickle("w", 6, 0, {2, 3}, {1, 2}), floats({0, 1, 2, 3, 4, 5}));
  TorchBinFile tt(span(g), "t.bin");
  tt.read_f32("w", out.data());
  EXPECT_EQ(out, (std::vector<float>{0, 2, 4, 1, 3, 5}));
  std::vector<int64_t> wrong = {3, 2};
  EXPECT_THROW(tt.read_f32("w", out.data(), &wrong), Error);
}

TEST(TorchBin, ReadsBf16AndHalf) {
  std::string bf, hf;
  for (float x : {1.5f, -2.25f}) put16(bf, float_to_bf16(x)), put16(hf, float_to_half(x));
  std::vector<float> out(2);
  std::string a = torch_file(state_dict_pickle("w", 2, 0, {2}, {1}, "BFloat16Storage"), bf);
  TorchBinFile(span(a), "a").read_f32("w", out.data());
  EXPECT_EQ(out, (std::vector<float>{1.5f, -2.25f}));
  std::string b = torch_file(state_dict_pickle("w", 2, 0, {2}, {1}, "HalfStorage"), hf);
  TorchBinFile(span(b), "b").read_f32("w", out.data());
  EXPECT_EQ(out, (std::vector<float>{1.5f, -2.25f}));
  std::string c = torch_file(state_dict_pickle("w", 2, 0, {2}, {1}, "LongStorage"), std::string(16, '\0'));
  EXPECT_NE(error_of(c).find("int64"), std::string::npos);
}

TEST(TorchBin, RefusesHostileArchives) {
  std::vector<float> data(6, 1.0f);
  // a tensor reaching past its storage, by size and by offset
  EXPECT_NE(error_of(torch_file(state_dict_pickle("w", 6, 0, {2, 4}, {4, 1}), floats(data))).find("past its storage"),
            std::string::npos);
  EXPECT_NE(error_of(torch_file(state_dict_pickle("w", 6, 5, {2}, {1}), floats(data))).find("past its storage"),
            std::string::npos);
  EXPECT_NE(error_of(torch_file(state_dict_pickle("w", 6, 0, {2, 3}, {-3, 1}), floats(data))).find("negative"),
            std::string::npos);
  // storage bytes that do not match the declared element count
  EXPECT_NE(error_of(torch_file(state_dict_pickle("w", 6, 0, {6}, {1}), floats({1, 2}))).find("need"),
            std::string::npos);
  // anything callable other than the rebuild functions, by name
  EXPECT_NE(error_of(torch_file(state_dict_pickle("w", 6, 0, {6}, {1}, "FloatStorage", "_rebuild_from_type_v2"),
                                floats(data)))
                .find("torch._utils._rebuild_from_type_v2"),
            std::string::npos);
  EXPECT_NE(error_of(torch_file("\x80\x02"
                                "cos\nsystem\n" +
                                    binunicode("id") + "\x85R.",
                                ""))
                .find("os.system"),
            std::string::npos);
  EXPECT_NE(error_of(torch_file("\x80\x02"
                                "c__builtin__\ngetattr\n.",
                                ""))
                .find("getattr"),
            std::string::npos);
  EXPECT_NE(error_of(torch_file("\x80\x02(" + binunicode("x") + "ios\nsystem\n.", "")).find("INST"), std::string::npos);
  EXPECT_NE(error_of(torch_file("\x80\x02"
                                "h\x05.",
                                ""))
                .find("memo"),
            std::string::npos);
  EXPECT_NE(error_of(torch_file("\x80\x02"
                                "K\x01.",
                                ""))
                .find("not a state dict"),
            std::string::npos);
  EXPECT_NE(error_of(torch_file("\x80\x02"
                                "]]a",
                                ""))
                .find("truncated"),
            std::string::npos);
  EXPECT_NE(error_of("\x80\x02}."), "");  // legacy format
  EXPECT_NE(error_of("PK\x03\x04"), "");
}

TEST(TorchBin, EveryTruncationIsAnErrorNotACrash) {
  std::string f = torch_file(state_dict_pickle("w", 4, 0, {2, 2}, {2, 1}), floats({1, 2, 3, 4}));
  for (size_t n = 0; n < f.size(); n++) EXPECT_NE(error_of(f.substr(0, n)), "") << "prefix " << n;
  // and every single-byte corruption parses or fails cleanly
  for (size_t i = 0; i < f.size(); i++) {
    std::string g = f;
    g[i] = static_cast<char>(g[i] ^ 0x5a);
    (void)error_of(g);
  }
}

TEST(GGUF, WriteThenReadBack) {
  GGUFWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 2);
  w.add_f32("llama.rope.freq_base", 10000.0f);
  w.add_bool("tokenizer.ggml.add_bos_token", false);
  w.add_strings("tokenizer.ggml.tokens", {"a", "b", "\xc4\xa0the"});
  w.add_i32s("tokenizer.ggml.token_type", {1, 1, 3});
  std::vector<float> m(64);
  for (int i = 0; i < 64; i++) m[i] = std::sin(i * 0.3f);
  std::vector<uint8_t> raw(m.size() * 4);
  std::memcpy(raw.data(), m.data(), raw.size());
  w.add_tensor("a.weight", {32, 2}, GGMLType::f32, raw);
  std::vector<uint8_t> q(68);
  cpu::quantize_row(cpu::QuantType::q8_0, m.data(), 64, q.data());
  w.add_tensor("b.weight", {32, 2}, GGMLType::q8_0, q);
  std::string path = (mindllm_test::fresh_tmp_dir("interop") / "t.gguf").string();
  w.write(path);
  MappedFile f(path);
  GGUFFile g = parse_gguf(f.bytes(), path);
  EXPECT_EQ(g.version, 3u);
  EXPECT_EQ(g.metadata["general.architecture"].get<std::string>(), "llama");
  EXPECT_EQ(g.metadata["llama.block_count"].get<uint32_t>(), 2u);
  EXPECT_EQ(g.metadata["tokenizer.ggml.tokens"].size(), 3u);
  EXPECT_EQ(g.metadata["tokenizer.ggml.token_type"][2].get<int>(), 3);
  ASSERT_EQ(g.tensors.size(), 2u);
  EXPECT_EQ(g.tensors[1].type, GGMLType::q8_0);
  EXPECT_EQ(g.tensors[1].size, 68u);
  const uint8_t* a = f.bytes().data() + g.data_start + g.tensors[0].offset;
  EXPECT_EQ(std::memcmp(a, m.data(), 256), 0);
  // q8_0 dequantises within half a step (plus the f16 rounding of the scale, 127 * 2^-11 steps)
  const uint8_t* b = f.bytes().data() + g.data_start + g.tensors[1].offset;
  for (int blk = 0; blk < 2; blk++) {
    float d = half_to_float(static_cast<uint16_t>(b[34 * blk] | (b[34 * blk + 1] << 8)));
    for (int k = 0; k < 32; k++)
      EXPECT_NEAR(d * static_cast<int8_t>(b[34 * blk + 2 + k]), m[32 * blk + k], d * 0.57f + 1e-6f);
  }
  // every truncation into the data is refused cleanly (only the last tensor's padding may go)
  std::string bytes(reinterpret_cast<const char*>(f.bytes().data()), f.bytes().size());
  for (size_t n = 0; n < g.data_start + g.tensors[1].offset + g.tensors[1].size; n++) {
    try {
      parse_gguf(span(bytes.substr(0, n)), "t.gguf");
      ADD_FAILURE() << "prefix " << n << " parsed";
    } catch (const Error& e) { EXPECT_EQ(e.code, ExitCode::bad_input); }
  }
}

TEST(GGUF, RefusesLyingCounts) {
  std::string s = "GGUF";
  put32(s, 3);
  s.append("\xff\xff\xff\xff\xff\xff\xff\x0f", 8);  // tensor count
  s.append(std::string(8, '\0'));
  EXPECT_THROW(parse_gguf(span(s), "x"), Error);
  std::string t = "GGUF";
  put32(t, 3);
  t.append(std::string(8, '\0'));
  t.append("\x01\0\0\0\0\0\0\0", 8);  // one kv
  t.append("\x01\0\0\0\0\0\0\0k", 9);
  put32(t, 9);  // array
  put32(t, 8);  // of strings
  t.append("\xff\xff\xff\xff\xff\xff\xff\x7f", 8);
  t.append(std::string(64, '\0'));
  EXPECT_THROW(parse_gguf(span(t), "x"), Error);
}
