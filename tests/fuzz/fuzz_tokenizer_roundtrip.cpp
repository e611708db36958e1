// libFuzzer target: encode/decode round trip of arbitrary bytes, and the split scanners covering
// the input exactly, for the hand-written scanners and a Split regex on PCRE2. decode(encode(x)) == x must hold for
// every byte string (no normalizer). Build: bash tests/fuzz/build_tokenizer_fuzzers.sh
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/trainer.h"

using namespace mindllm;

static Tokenizer make(SplitPattern p, const char* normalizer) {
  std::vector<std::string> texts;
  for (int i = 0; i < 30; i++) {
    texts.push_back("The quick brown fox jumps over the lazy dog " + std::to_string(i * 7919) + ".\n");
    texts.push_back("中华人民共和国民法典 第" + std::to_string(i) + "条 它's mixed text!\n\n  \t");
  }
  BpeTrainOptions o;
  o.vocab_size = 600;
  o.pattern = p;
  o.special = {"<|endoftext|>", "<|im_start|>"};
  o.normalizer = normalizer;
  o.progress = false;
  o.min_frequency = 1;
  return train_bpe_from_texts(texts, o);
}

// The same tokenizer with a Split regex that has no hand-written scanner (it runs on PCRE2).
static Tokenizer with_regex(const Tokenizer& t, const char* regex) {
  nlohmann::json d = nlohmann::json::parse(t.to_json());
  d["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = regex;
  return Tokenizer::from_json(d.dump(), "regex.json");
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizer gpt2 = make(SplitPattern::gpt2, "");
  static const Tokenizer qwen = make(SplitPattern::qwen2, "");
  static const Tokenizer custom =
      with_regex(qwen, R"((?i:the)\b|\p{Han}{1,2}|\h{4,}|\w+|^\s+|(?m:\s+$)|[^\w\s]{,3}|\s)");
  static const Tokenizer llama_nfkc = make(SplitPattern::llama3, "nfkc");
  std::string s(reinterpret_cast<const char*>(data), size);
  for (auto p : {SplitPattern::gpt2, SplitPattern::llama3, SplitPattern::qwen2}) {
    size_t at = 0;
    split_with_pattern(p, s, [&](size_t b, size_t e) {
      if (b != at || e <= b || e > s.size()) std::abort();
      at = e;
    });
    if (at != s.size()) std::abort();
  }
  for (const Tokenizer* t : {&gpt2, &qwen, &custom}) {
    auto ids = t->encode(s);
    if (t->decode(ids) != s) std::abort();
  }
  auto ids = llama_nfkc.encode(s);
  std::string once = llama_nfkc.decode(ids);
  // Normalized text is stable: encoding the decoded text again gives the same ids.
  if (llama_nfkc.encode(once) != ids) std::abort();
  return 0;
}
