// libFuzzer target: the tokenizer.json parser. Any input either loads or is rejected with
// mindllm::Error (bad input); never a crash, hang or huge allocation. A loaded tokenizer must
// encode and decode.
// Build: bash tests/fuzz/build_tokenizer_fuzzers.sh
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    mindllm::Tokenizer t = mindllm::Tokenizer::from_json(text, "fuzz.json");
    auto ids = t.encode("Hello, 世界! <|endoftext|> 123\n\xff");
    for (mindllm::TokenId id : ids)
      if (id < 0 || static_cast<size_t>(id) >= t.vocab_size()) std::abort();
    (void)t.decode(ids);
    (void)t.to_json();
  } catch (const mindllm::Error& e) {
    if (e.code != mindllm::ExitCode::bad_input) std::abort();
  }
  return 0;
}
