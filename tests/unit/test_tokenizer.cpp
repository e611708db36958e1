// Tokenizer unit tests: split scanners against Hugging Face's splits (expected values produced by
// `tokenizers` Split(Regex(...), "isolated")), normalization, round trips, train/save/load, and
// clear errors on bad tokenizer files. Parity on real files is in tests/reference/test_tokenizer_*.py.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_tmp.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/rng.h"
#include "data/stream.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/trainer.h"
#include "tokenizer/unicode.h"

using namespace mindllm;

namespace {

std::vector<std::string> split(SplitPattern p, const std::string& s) {
  std::vector<std::string> out;
  split_with_pattern(p, s, [&](size_t b, size_t e) { out.push_back(s.substr(b, e - b)); });
  return out;
}

using V = std::vector<std::string>;

const std::string kShared = std::string(MINDLLM_SOURCE_DIR) + "/../shared/data";

Tokenizer small_trained(SplitPattern p = SplitPattern::qwen2) {
  std::vector<std::string> texts;
  for (int i = 0; i < 50; i++) {
    texts.push_back("The quick brown fox jumps over the lazy dog " + std::to_string(i * 37) + ".\n");
    texts.push_back("我们今天去北京大学看看，天气很好！\n");
    texts.push_back("It's a mixed 中英文 text, isn't it?\n");
  }
  BpeTrainOptions o;
  o.vocab_size = 400;
  o.pattern = p;
  o.special = {"<|endoftext|>", "<|im_end|>"};
  o.progress = false;
  return train_bpe_from_texts(texts, o);
}

}  // namespace

TEST(TokenizerSplit, Gpt2MatchesHuggingFace) {
  EXPECT_EQ(split(SplitPattern::gpt2, "I'M here, it's 12345 you're   ok\n\n  x"),
            (V{"I", "'", "M", " here", ",", " it", "'s", " 12345", " you", "'re", "  ", " ok", "\n\n ", " x"}));
  EXPECT_EQ(split(SplitPattern::gpt2, "你好，世界！Hello 2024年"),
            (V{"你好", "，", "世界", "！", "Hello", " 2024", "年"}));
  EXPECT_EQ(split(SplitPattern::gpt2, "a\u00a0\u00a0b\t\tc  \r\n d"),
            (V{"a", "\u00a0", "\u00a0", "b", "\t", "\t", "c", "  \r\n", " d"}));
}

TEST(TokenizerSplit, Llama3MatchesHuggingFace) {
  EXPECT_EQ(split(SplitPattern::llama3, "I'M here, it's 12345 you're   ok\n\n  x"),
            (V{"I", "'M", " here", ",", " it", "'s", " ", "123", "45", " you", "'re", "  ", " ok", "\n\n", " ", " x"}));
  EXPECT_EQ(split(SplitPattern::llama3, "你好，世界！Hello 2024年"),
            (V{"你好", "，世界", "！Hello", " ", "202", "4", "年"}));
  EXPECT_EQ(split(SplitPattern::llama3, "a\u00a0\u00a0b\t\tc  \r\n d"),
            (V{"a", "\u00a0", "\u00a0b", "\t", "\tc", "  \r\n", " d"}));
}

TEST(TokenizerSplit, Qwen2MatchesHuggingFace) {
  EXPECT_EQ(split(SplitPattern::qwen2, "你好，世界！Hello 2024年"),
            (V{"你好", "，世界", "！Hello", " ", "2", "0", "2", "4", "年"}));
}

TEST(TokenizerSplit, InvalidUtf8IsCoveredExactly) {
  std::string s = "ab\xff\xfe cd\xe4\xb8 \xc3";
  for (auto p : {SplitPattern::gpt2, SplitPattern::llama3, SplitPattern::qwen2}) {
    std::string joined;
    for (auto& piece : split(p, s)) {
      EXPECT_FALSE(piece.empty());
      joined += piece;
    }
    EXPECT_EQ(joined, s);
  }
}

TEST(TokenizerSplit, LongSContraction) {
  // (?i:'s) matches 'ſ in Oniguruma (U+017F folds to s): HF gives "'ſ" as a piece.
  EXPECT_EQ(split(SplitPattern::llama3, "x'\u017fy"), (V{"x", "'\u017f", "y"}));
  EXPECT_EQ(split(SplitPattern::qwen2, "x'\u017f"), (V{"x", "'\u017f"}));
}

// The known patterns through PCRE2 give the pieces of their hand-written scanners.
TEST(TokenizerSplit, KnownPatternsOnPcre2EqualScanners) {
  std::vector<std::string> texts = {
      "I'M here, it's 12345 you're   ok\n\n  x", "你好，世界！Hello 2024年", "a\u00a0\u00a0b\t\tc  \r\n d",
      "x'\u017fy 'S 'sT \u2167\u00b2 \u300a三国\u300b\u3000\n", "emoji 😀👍🏽 ok e\u0301 Å ﬁ ｱ\r\r\n\n \t"};
  for (const char* f : {"/corpus/en/wiki_demo.txt", "/corpus/zh/三国演义.txt"}) {
    std::string path = kShared + f;
    if (std::filesystem::exists(path)) {
      std::string all = read_file(path);
      texts.push_back(all.substr(0, 200000));
    }
  }
  for (auto p : {SplitPattern::gpt2, SplitPattern::llama3, SplitPattern::qwen2}) {
    Regex re = compile_split_regex(split_pattern_regex(p), "test");
    for (auto& t : texts) {
      V pcre;
      split_with_regex(re, t, [&](size_t b, size_t e) { pcre.push_back(t.substr(b, e - b)); });
      EXPECT_EQ(pcre, split(p, t)) << split_pattern_name(p) << ": " << t.substr(0, 60);
    }
  }
}

TEST(TokenizerUnicode, Normalization) {
  std::string out;
  unicode::normalize("e\u0301", unicode::NormForm::nfc, out);
  EXPECT_EQ(out, "\u00e9");
  unicode::normalize("\ufb01\u2460\uff71", unicode::NormForm::nfkc, out);
  EXPECT_EQ(out, "fi1\u30a2");
  unicode::normalize("\u1100\u1161\u11a8", unicode::NormForm::nfc, out);  // Hangul jamo compose
  EXPECT_EQ(out, "\uac01");
  unicode::normalize("a\u0323\u0302", unicode::NormForm::nfc, out);  // reorder, then compose
  EXPECT_EQ(out, "\u1ead");
  unicode::normalize("x\xff\xcc\x81y", unicode::NormForm::nfc, out);  // invalid byte blocks composition
  EXPECT_EQ(out, "x\xff\xcc\x81y");
  unicode::lowercase("ÀB\u0130Σ", out);
  EXPECT_EQ(out, "àbi\u0307σ");
}

TEST(Tokenizer, TrainEncodeDecodeRoundTrip) {
  Tokenizer t = small_trained();
  EXPECT_LE(t.vocab_size(), 400u);
  EXPECT_GT(t.vocab_size(), 300u);
  EXPECT_EQ(t.token_to_id("<|endoftext|>"), 0u);
  EXPECT_EQ(t.eos_id(), 0u);
  auto ids = t.encode("The quick brown fox<|endoftext|>我们");
  EXPECT_NE(std::find(ids.begin(), ids.end(), 0u), ids.end());
  Rng rng(7);
  for (int k = 0; k < 200; k++) {
    std::string s(rng.below(300), '\0');
    for (auto& c : s) c = static_cast<char>(rng.below(256));
    auto e = t.encode(s);
    EXPECT_EQ(t.decode(e), s);
  }
}

TEST(Tokenizer, SaveLoadKeepsIdsAndHash) {
  Tokenizer t = small_trained(SplitPattern::llama3);
  auto dir = mindllm_test::test_tmp_root() / "tok_test";
  std::filesystem::create_directories(dir);
  std::string path = (dir / "tokenizer.json").string();
  t.save(path);
  Tokenizer u = Tokenizer::load(path);
  Tokenizer w = Tokenizer::load(dir.string());
  std::string text = "It's a mixed 中英文 text, isn't it? 12345\n\n<|im_end|>";
  EXPECT_EQ(t.encode(text), u.encode(text));
  EXPECT_EQ(t.encode(text), w.encode(text));
  EXPECT_EQ(t.hash(), u.hash());
  EXPECT_EQ(t.merges(), u.merges());
  EXPECT_NE(t.hash(), small_trained(SplitPattern::gpt2).hash() + 1);  // hash is a value, not an address
  std::filesystem::remove_all(dir);
}

TEST(Tokenizer, BatchAndParallelEqualSequential) {
  Tokenizer t = small_trained();
  std::vector<std::string> texts;
  std::string big;
  for (int i = 0; i < 3000; i++) {
    texts.push_back("line " + std::to_string(i) + " 我们 fox\n");
    big += "Word " + std::to_string(i) + " 北京 it's\nanother line\n\n  indented\n";
  }
  auto batch = t.encode_batch(texts, 2);
  for (size_t i = 0; i < texts.size(); i++) EXPECT_EQ(batch[i], t.encode(texts[i]));
  while (big.size() < (2u << 20)) big += big;
  EXPECT_EQ(t.encode_parallel(big, 2), t.encode(big));
}

TEST(Tokenizer, Gpt2FilesFromSharedData) {
  std::string dir = kShared + "/tokenizers/gpt2";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no shared data";
  Tokenizer t = Tokenizer::load(dir);
  EXPECT_EQ(t.vocab_size(), 50257u);
  EXPECT_EQ(t.eos_id(), 50256u);
  // ids from Hugging Face tokenizers / tiktoken gpt2
  EXPECT_EQ(t.encode("Hello world, it's 2024!"), (std::vector<TokenId>{15496, 995, 11, 340, 338, 48609, 0}));
  EXPECT_EQ(t.decode(t.encode("héllo\xff")), "héllo\xff");
}

TEST(Tokenizer, BadFilesAreBadInput) {
  auto expect_bad = [](const std::string& json, const std::string& needle) {
    try {
      Tokenizer::from_json(json, "t.json");
      ADD_FAILURE() << "accepted: " << json;
    } catch (const Error& e) {
      EXPECT_EQ(e.code, ExitCode::bad_input);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string pre = R"("pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false})";
  expect_bad("", "not valid JSON");
  expect_bad("[]", "top level");
  expect_bad(R"({"model": {"type": "WordPiece", "vocab": {}}})", "WordPiece");
  expect_bad(R"({"model": {"type": "BPE", "vocab": {"a": 1e40}, "merges": []}, )" + pre + "}", "token id");
  expect_bad(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}, )" + pre + "}",
             "not in the vocabulary");
  expect_bad(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}, )" + pre + "}", "used twice");
  expect_bad(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 9000000}, "merges": []}, )" + pre + "}", "sparse");
  expect_bad(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": null})", "pre_tokenizer");
  expect_bad(
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": "x"}], )" + pre + "}",
      "added_tokens[0].id");
}

// A Split regex without a hand-written scanner (here GPT-2's with digit runs of three) runs on PCRE2.
TEST(Tokenizer, AnySplitRegexLoads) {
  nlohmann::json doc = nlohmann::json::parse(small_trained(SplitPattern::llama3).to_json());
  auto& regex = doc["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"];
  regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}{1,3}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  Tokenizer t = Tokenizer::from_json(doc.dump(), "t.json");
  EXPECT_EQ(nlohmann::json::parse(t.to_json())["pre_tokenizer"], doc["pre_tokenizer"]);
  // Digits cut at three: no token spans "3" and "4" of "123456".
  std::string joined;
  for (TokenId id : t.encode(" 123456")) joined += std::string(t.token_bytes(id)) + "|";
  EXPECT_NE(joined.find("3|"), std::string::npos) << joined;
  Rng rng(3);
  for (int k = 0; k < 100; k++) {
    std::string s(rng.below(200), '\0');
    for (auto& c : s) c = static_cast<char>(rng.below(256));
    EXPECT_EQ(t.decode(t.encode(s)), s);
  }
  std::string big;
  while (big.size() < (2u << 20)) big += "Word 12345 北京 it's\nanother line\n\n  indented\n";
  EXPECT_EQ(t.encode_parallel(big, 2), t.encode(big));
  regex = "a(+";
  try {
    Tokenizer::from_json(doc.dump(), "t.json");
    ADD_FAILURE() << "accepted a(+";
  } catch (const Error& e) {
    EXPECT_EQ(e.code, ExitCode::bad_input);
    EXPECT_NE(std::string(e.what()).find(
                  "t.json: pre_tokenizer.pretokenizers[0].pattern.Regex: invalid regular expression 'a(+'"),
              std::string::npos)
        << e.what();
  }
}

// Training reads gzip and zstd files (by their bytes) and .jsonl.zst as `data prepare` writes it.
TEST(Tokenizer, TrainReadsCompressedInput) {
  auto dir = mindllm_test::test_tmp_root() / "tok_train_z";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string text, jsonl;
  for (int i = 0; i < 300; i++) {
    std::string line = "The quick brown fox " + std::to_string(i * 37) + " 我们今天去北京大学看看，天气很好！";
    text += line + "\n";
    jsonl += nlohmann::json{{"text", line + "\n"}, {"id", i}}.dump() + "\n";
  }
  auto write = [&](const std::string& name, const std::string& data, int zstd_level) {
    data::OutputFile f((dir / name).string(), zstd_level);
    f.write(data);
    f.commit();
    return (dir / name).string();
  };
  BpeTrainOptions o;
  o.vocab_size = 350;
  o.progress = false;
  o.threads = 2;
  o.inputs = {write("a.txt", text, 0)};
  Tokenizer plain = train_bpe(o);
  o.inputs = {write("a.txt.zst", text, 3)};
  EXPECT_EQ(train_bpe(o).merges(), plain.merges());
  ASSERT_EQ(std::system(("gzip -c " + (dir / "a.txt").string() + " > " + (dir / "a.txt.gz").string()).c_str()), 0);
  o.inputs = {(dir / "a.txt.gz").string()};
  EXPECT_EQ(train_bpe(o).merges(), plain.merges());
  o.inputs = {write("a.jsonl.zst", jsonl, 3)};
  EXPECT_EQ(train_bpe(o).merges(), plain.merges());
  // A truncated compressed file is bad input naming it.
  std::string z = read_file((dir / "a.txt.zst").string());
  o.inputs = {write("cut.txt.zst", z.substr(0, z.size() / 2), 0)};
  try {
    train_bpe(o);
    ADD_FAILURE() << "a truncated file was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code, ExitCode::bad_input);
    EXPECT_NE(std::string(e.what()).find("cut.txt.zst"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}
