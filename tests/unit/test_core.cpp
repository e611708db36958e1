#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "test_tmp.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/jsonl.h"
#include "core/safetensors.h"
#include "core/utf8.h"

using namespace mindllm;

static std::string temp_path(const std::string& name) {
  auto dir = mindllm_test::test_tmp_root() / "core";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

TEST(DType, Bf16RoundTripAndRounding) {
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(-2.5f)), -2.5f);
  // 1 + 2^-8 is halfway between two bf16 values: ties to even gives 1.0.
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
}

TEST(DType, HalfRoundTrip) {
  for (float f : {0.0f, 1.0f, -1.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f})
    EXPECT_EQ(half_to_float(float_to_half(f)), f) << f;
  EXPECT_TRUE(std::isinf(half_to_float(float_to_half(1e6f))));
}

TEST(Safetensors, WriteReadRoundTrip) {
  std::string p = temp_path("rt.safetensors");
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<uint16_t> b = {float_to_bf16(0.5f), float_to_bf16(-3.0f)};
  write_safetensors(p, {{"a", DType::f32, {2, 3}, a.data()}, {"b", DType::bf16, {2}, b.data()}}, {{"format", "pt"}});
  SafetensorsFile f(p);
  EXPECT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  std::vector<float> out(6);
  std::vector<int64_t> shape = {2, 3};
  f.read_f32("a", out.data(), &shape);
  EXPECT_EQ(out, a);
  f.read_f32("b", out.data());
  EXPECT_EQ(out[0], 0.5f);
  EXPECT_EQ(out[1], -3.0f);
  std::vector<int64_t> wrong = {3, 2};
  EXPECT_THROW(f.read_f32("a", out.data(), &wrong), Error);
  EXPECT_THROW(f.read_f32("missing", out.data()), Error);
}

static void write_raw(const std::string& p, const std::string& header, size_t data_bytes) {
  std::ofstream o(p, std::ios::binary);
  uint64_t n = header.size();
  o.write(reinterpret_cast<const char*>(&n), 8);
  o << header;
  o << std::string(data_bytes, '\0');
}

TEST(Safetensors, HostileFilesAreBadInput) {
  std::string p = temp_path("bad.safetensors");
  auto expect_bad = [&](const std::string& header, size_t data) {
    write_raw(p, header, data);
    try {
      SafetensorsFile f(p);
      FAIL() << "accepted: " << header;
    } catch (const Error& e) { EXPECT_EQ(e.code, ExitCode::bad_input) << e.what(); }
  };
  expect_bad("not json", 0);
  expect_bad("[1,2]", 0);
  expect_bad(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8);  // past the end
  expect_bad(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);   // size mismatch
  expect_bad(R"({"a":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", 8);    // unknown dtype
  expect_bad(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8);  // negative dim
  expect_bad(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      12);
  // header length beyond the file
  std::ofstream o(p, std::ios::binary);
  uint64_t n = 1ull << 40;
  o.write(reinterpret_cast<const char*>(&n), 8);
  o.close();
  EXPECT_THROW(SafetensorsFile f(p), Error);
  // shorter than the length prefix
  std::ofstream(p, std::ios::binary) << "abc";
  EXPECT_THROW(SafetensorsFile f(p), Error);
}

TEST(FileIo, AtomicWriteReplaces) {
  std::string p = temp_path("atomic.txt");
  write_file_atomic(p, "one");
  write_file_atomic(p, "two");
  EXPECT_EQ(read_file(p), "two");
  EXPECT_THROW(read_file(temp_path("does-not-exist")), Error);
}

// Issue 24 item 12: a directory where a file is expected is bad input (exit 2) with a clear
// message, found before any work; never "internal error".
TEST(FileIo, DirectoriesAreRefusedAsFiles) {
  std::string dir = temp_path("a-dir");
  std::filesystem::create_directories(dir);
  auto bad_input_message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      EXPECT_EQ(e.code, ExitCode::bad_input) << e.what();
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(bad_input_message([&] { read_file(dir); }).find("is a directory"), std::string::npos);
  EXPECT_NE(bad_input_message([&] { write_file_atomic(dir, "x"); }).find("is a directory"), std::string::npos);
  EXPECT_NE(bad_input_message([&] { check_output_file(dir, "--out"); }).find("--out " + dir + ": is a directory"),
            std::string::npos);
  EXPECT_NE(bad_input_message([&] { check_output_file(dir + "/no/such/f.json", "--out"); }).find("does not exist"),
            std::string::npos);
  check_output_file(dir + "/new.json", "--out");  // a new file in an existing directory is fine
  write_file_atomic(dir + "/file", "x");
  EXPECT_NE(bad_input_message([&] { check_output_dir(dir + "/file", "-o"); }).find("is a file"), std::string::npos);
  EXPECT_NE(bad_input_message([&] { check_output_dir(dir + "/file/sub", "-o"); }).find("is a file"), std::string::npos);
  check_output_dir(dir + "/new/sub", "-o");  // created later by the command
  check_output_dir(dir, "-o");
}

TEST(CoreUtf8, StrictValidation) {
  EXPECT_TRUE(mindllm::utf8::valid("hello 世界 😀"));
  EXPECT_FALSE(mindllm::utf8::valid("bad \xC3\x28"));
  EXPECT_FALSE(mindllm::utf8::valid("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(mindllm::utf8::valid("\xC0\xAF"));          // overlong
  EXPECT_FALSE(mindllm::utf8::valid("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(mindllm::utf8::valid("\xE4\xB8"));          // cut short
  EXPECT_EQ(mindllm::utf8::first_invalid("abcdefghij\xFF"), 10u);
}

TEST(CoreUtf8, EncodeDecodeEveryScalarValue) {
  using namespace mindllm;
  for (char32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x3000 ? 1 : 97)) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    utf8::append(s, cp);
    char32_t back = 0;
    ASSERT_EQ(utf8::decode(s, 0, &back), s.size()) << int(cp);
    ASSERT_EQ(back, cp);
  }
}

TEST(CoreUtf8, Boundaries) {
  using namespace mindllm;
  const std::string s = "a世b";  // 'a', 3 bytes, 'b'
  EXPECT_EQ(utf8::count_chars(s), 3u);
  EXPECT_EQ(utf8::char_boundary_before(s, 2), 1u);  // inside 世: back to its start
  EXPECT_EQ(utf8::char_boundary_before(s, 4), 4u);
  EXPECT_EQ(utf8::char_boundary_before(s, 5), 5u);  // the end
  EXPECT_EQ(utf8::incomplete_tail("a\xE4\xB8"), 2u);
  EXPECT_EQ(utf8::incomplete_tail("a\xE4\xB8\x96"), 0u);
  EXPECT_EQ(utf8::incomplete_tail(""), 0u);
}

TEST(CoreJsonl, LinesNumbersBomAndBlanks) {
  std::vector<std::pair<std::string, int>> got;
  mindllm::for_each_jsonl_line("\xEF\xBB\xBF{\"a\":1}\r\n\n  \t\n{\"b\":2}  \n{\"c\":3}",
                               [&](std::string_view line, int no) { got.emplace_back(std::string(line), no); });
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::make_pair(std::string("{\"a\":1}"), 1));
  EXPECT_EQ(got[1], std::make_pair(std::string("{\"b\":2}"), 4));
  EXPECT_EQ(got[2], std::make_pair(std::string("{\"c\":3}"), 5));
}
