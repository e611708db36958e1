// A conversation as training tokens: rendered with the chat template, tokenized piece by piece
// (the text before each assistant turn, the assistant turn, ...) so that token boundaries fall
// on turn boundaries, and each token marked as trained (gets a loss as a target) or not.
//
// The assistant part of turn k is what rendering messages[0..k] adds to rendering
// messages[0..k) with the generation prompt: the answer and the template's end-of-turn text
// (EOS, <|im_end|>, <|eot_id|>). A template whose renderings of a prefix are not prefixes of the
// whole conversation (e.g. one that rewrites earlier turns) cannot be masked this way: bad input.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sft/message.h"

namespace mindllm {
class Tokenizer;
}

namespace mindllm::sft {

class ChatTemplate;

enum class LossOn {
  assistant,       // every assistant turn (default)
  last_assistant,  // --last-turn-only
  all,             // --train-on-prompt: every token after the first
};

struct TokenizedSample {
  std::vector<int32_t> ids;
  std::vector<uint8_t> trained;  // trained[i]: ids[i] is a target with a loss (trained[0] is always 0)
  int64_t count_trained() const;
};

TokenizedSample tokenize_conversation(const ChatTemplate& tmpl, const Tokenizer& tok, const Conversation& c, LossOn on);

// The sample's text with the trained tokens between markers (ANSI colour when `color`, else
// "[[" "]]"), for `mindllm sft --dry-run`.
std::string show_trained(const Tokenizer& tok, const TokenizedSample& s, bool color);

}  // namespace mindllm::sft
