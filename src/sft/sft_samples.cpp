#include "sft/sft_samples.h"

#include "core/error.h"
#include "sft/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace mindllm::sft {

int64_t TokenizedSample::count_trained() const {
  int64_t n = 0;
  for (uint8_t t : trained) n += t;
  return n;
}

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

void append(const Tokenizer& tok, std::string_view text, bool trained, TokenizedSample& out) {
  if (text.empty()) return;
  tok.encode_append(text, out.ids);
  out.trained.resize(out.ids.size(), trained ? 1 : 0);
}

}  // namespace

TokenizedSample tokenize_conversation(const ChatTemplate& tmpl, const Tokenizer& tok, const Conversation& c,
                                      LossOn on) {
  const std::string full = tmpl.render(c, false);
  TokenizedSample s;
  if (on == LossOn::all) {
    append(tok, full, true, s);
    if (!s.trained.empty()) s.trained[0] = 0;
    return s;
  }
  // [begin, end) of each assistant part in `full`.
  std::vector<std::pair<size_t, size_t>> parts;
  size_t last_assistant = 0;
  for (size_t k = 0; k < c.size(); k++)
    if (c[k].role == "assistant") last_assistant = k;
  for (size_t k = 0; k < c.size(); k++) {
    if (c[k].role != "assistant" || (on == LossOn::last_assistant && k != last_assistant)) continue;
    Conversation before(c.begin(), c.begin() + k), through(c.begin(), c.begin() + k + 1);
    const std::string prompt = tmpl.render(before, true), turn = tmpl.render(through, false);
    size_t prev_end = parts.empty() ? 0 : parts.back().second;
    if (!starts_with(turn, prompt) || !starts_with(full, turn) || prompt.size() < prev_end)
      bad_input("chat template " + tmpl.name() + ": rendering the first " + std::to_string(k + 1) +
                " messages is not a prefix of rendering them all, so the assistant tokens cannot be located "
                "(use --last-turn-only, --train-on-prompt or another --chat-template)");
    parts.push_back({prompt.size(), turn.size()});
  }
  size_t pos = 0;
  for (auto [begin, end] : parts) {
    append(tok, std::string_view(full).substr(pos, begin - pos), false, s);
    append(tok, std::string_view(full).substr(begin, end - begin), true, s);
    pos = end;
  }
  append(tok, std::string_view(full).substr(pos), false, s);
  if (!s.trained.empty()) s.trained[0] = 0;  // the first token is never a target
  return s;
}

std::string show_trained(const Tokenizer& tok, const TokenizedSample& s, bool color) {
  const char* open = color ? "\x1b[1;32m" : "[[";
  const char* close = color ? "\x1b[0m" : "]]";
  std::string out;
  size_t i = 0;
  while (i < s.ids.size()) {
    size_t j = i;
    while (j < s.ids.size() && s.trained[j] == s.trained[i]) j++;
    std::string text = tok.decode(std::span<const TokenId>(s.ids).subspan(i, j - i));
    out += s.trained[i] ? open + text + close : text;
    i = j;
  }
  return out;
}

}  // namespace mindllm::sft
