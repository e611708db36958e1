// libFuzzer target: encode/decode round trip of arbitrary bytes, and the split scanners covering
// the input exactly. decode(encode(x)) == x must hold for every byte string (no normalizer).
// Build: bash tests/fuzz/build_tokenizer_fuzzers.sh
#include <cstdint>
#include <cstdlib>
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

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizer gpt2 = make(SplitPattern::gpt2, "");
  static const Tokenizer qwen = make(SplitPattern::qwen2, "");
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
  for (const Tokenizer* t : {&gpt2, &qwen}) {
    auto ids = t->encode(s);
    if (t->decode(ids) != s) std::abort();
  }
  auto ids = llama_nfkc.encode(s);
  std::string once = llama_nfkc.decode(ids);
  // Normalized text is stable: encoding the decoded text again gives the same ids.
  if (llama_nfkc.encode(once) != ids) std::abort();
  return 0;
}
