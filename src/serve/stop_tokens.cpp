#include "serve/stop_tokens.h"

#include <algorithm>
#include <optional>

namespace mindllm {

std::vector<int32_t> chat_stop_tokens(const ModelConfig& cfg, const Tokenizer& tok, const sft::ChatTemplate& t) {
  std::vector<int32_t> ids;
  auto add = [&](std::optional<TokenId> id) {
    if (id && std::find(ids.begin(), ids.end(), *id) == ids.end()) ids.push_back(*id);
  };
  if (cfg.eos_token_id >= 0) add(cfg.eos_token_id);
  add(tok.eos_id());
  if (!t.eos_token().empty()) add(tok.token_to_id(t.eos_token()));
  for (const char* end_of_turn : {"<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>"})
    if (t.source().find(end_of_turn) != std::string::npos) add(tok.token_to_id(end_of_turn));
  return ids;
}

}  // namespace mindllm
