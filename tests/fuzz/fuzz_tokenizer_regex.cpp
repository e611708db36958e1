// libFuzzer target: Split regexes that run on PCRE2 (core/regex, the Oniguruma translation).
// Input: a pattern, a NUL byte, then a text. Any pattern either compiles or is refused with a
// bad-input error; a compiled one splits any text into pieces that cover it exactly, and a
// tokenizer.json holding it as its Split regex loads and round-trips the text.
// Build: bash tests/fuzz/build_tokenizer_fuzzers.sh
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/regex.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/trainer.h"

using namespace mindllm;

static nlohmann::json base_doc() {
  std::vector<std::string> texts;
  for (int i = 0; i < 30; i++)
    texts.push_back("The quick brown fox " + std::to_string(i * 7919) + " 中华人民共和国 it's!\n");
  BpeTrainOptions o;
  o.vocab_size = 400;
  o.pattern = SplitPattern::llama3;
  o.progress = false;
  o.min_frequency = 1;
  return nlohmann::json::parse(train_bpe_from_texts(texts, o).to_json());
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static nlohmann::json doc = base_doc();
  std::string in(reinterpret_cast<const char*>(data), size);
  size_t nul = in.find('\0');
  std::string pattern = in.substr(0, nul), text = nul == std::string::npos ? in : in.substr(nul + 1);
  try {
    for (auto syntax : {RegexSyntax::python, RegexSyntax::pcre2}) {
      Regex re(pattern, syntax, "fuzz");
      re.for_each_match(text, EmptyMatches::python, [&](const std::vector<RegexSpan>& g) {
        if (g[0].begin > g[0].end || g[0].end > text.size()) std::abort();
      });
      (void)re.replace_all(text, "x");
    }
  } catch (const Error& e) {
    if (e.code != ExitCode::bad_input) std::abort();
  }
  try {
    Regex re = compile_split_regex(pattern, "fuzz");
    size_t at = 0;
    split_with_regex(re, text, [&](size_t b, size_t e) {
      if (b != at || e <= b || e > text.size()) std::abort();
      at = e;
    });
    if (at != text.size()) std::abort();
    nlohmann::json d = doc;
    d["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = pattern;
    Tokenizer t = Tokenizer::from_json(d.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "fuzz.json");
    if (t.decode(t.encode(text)) != text) std::abort();
  } catch (const Error& e) {
    if (e.code != ExitCode::bad_input) std::abort();
  }
  return 0;
}
