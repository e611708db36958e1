// The tokens that end a chat answer, for `mindllm chat` and the server's chat completions.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "sft/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace mindllm {

// The model's and tokenizer's end of sequence, the template's EOS token, and the end-of-turn
// tokens the template writes (<|im_end|>, <|eot_id|>, <|end|>, <|endoftext|>).
std::vector<int32_t> chat_stop_tokens(const ModelConfig& cfg, const Tokenizer& tok, const sft::ChatTemplate& t);

}  // namespace mindllm
