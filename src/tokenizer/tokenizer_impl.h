// Internals of Tokenizer shared by the encoder (tokenizer.cpp) and the file I/O (tokenizer_io.cpp).
#pragma once
#include <nlohmann/json.hpp>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"

namespace mindllm {

struct AddedToken {
  std::string content;
  TokenId id = 0;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

// Leftmost-longest matching of added tokens (what Hugging Face's Aho-Corasick with
// MatchKind::LeftmostLongest gives): a byte trie walked from each candidate start.
class AddedMatcher {
 public:
  void add(std::string_view pattern, int32_t token_index);
  bool empty() const { return nodes_.size() <= 1; }
  // The leftmost match starting at or after `from`, longest at that start. False if none.
  bool find(std::string_view text, size_t from, size_t* begin, size_t* end, int32_t* token_index) const;

 private:
  struct Node {
    int32_t token = -1;
  };
  std::vector<Node> nodes_{Node{}};
  U64Map children_;  // (node << 8 | byte) -> child
  bool first_[256] = {};
};

enum class NormStep { nfc, nfkc, nfd, nfkd, lowercase };

struct PreStep {
  enum Kind { split, digits, byte_level } kind = split;
  SplitPattern pattern = SplitPattern::gpt2;
  std::shared_ptr<const Regex> regex;  // a Split regex without a hand-written scanner (else `pattern`)
  bool individual_digits = false;
  bool add_prefix_space = false, use_regex = true;
  bool after_byte_level = false;
};

struct TokenizerImpl {
  BpeModel model;
  std::vector<AddedToken> added;
  std::vector<NormStep> normalizers;
  std::vector<PreStep> pre;
  nlohmann::json normalizer_json, pre_tokenizer_json, post_processor_json, decoder_json;
  AddedMatcher raw_matcher, normalized_matcher;
  std::unordered_map<TokenId, size_t> added_by_id;
  std::unordered_map<std::string, size_t> added_by_content;
  std::optional<TokenId> eos;
  std::string eos_hint;  // eos_token from special_tokens_map.json
  uint64_t content_hash = 0;
  uint64_t serial = 0;  // identifies this instance in the per-thread word caches
  size_t vocab_size = 0;
  bool can_cut_at_newlines = true;  // see Tokenizer::encode_parallel

  // Builds matchers, eos, hash and sizes once model/added/normalizers/pre are filled.
  void finish(const std::string& where);
  void normalize(std::string_view in, std::string& out) const;
};

// Runs the pre-tokenizer steps from `k` on one piece, calling word(piece) for each final word.
// `prefix_buf` holds the piece with ByteLevel's prefix space (ByteLevel appears once).
template <class Word>
void pre_tokenize(const std::vector<PreStep>& steps, size_t k, std::string_view piece, std::string& prefix_buf,
                  Word&& word) {
  if (piece.empty()) return;
  if (k == steps.size()) {
    word(piece);
    return;
  }
  const PreStep& st = steps[k];
  switch (st.kind) {
    case PreStep::split: {
      auto next = [&](size_t b, size_t e) { pre_tokenize(steps, k + 1, piece.substr(b, e - b), prefix_buf, word); };
      if (st.regex) split_with_regex(*st.regex, piece, next);
      else split_with_pattern(st.pattern, piece, next);
      break;
    }
    case PreStep::digits:
      split_digits(piece, st.individual_digits, st.after_byte_level,
                   [&](size_t b, size_t e) { pre_tokenize(steps, k + 1, piece.substr(b, e - b), prefix_buf, word); });
      break;
    case PreStep::byte_level: {
      std::string_view p = piece;
      if (st.add_prefix_space && piece[0] != ' ') {
        prefix_buf.assign(1, ' ');
        prefix_buf.append(piece);
        p = prefix_buf;
      }
      if (st.use_regex) {
        split_with_pattern(SplitPattern::gpt2, p, [&](size_t b, size_t e) {
          pre_tokenize(steps, k + 1, p.substr(b, e - b), prefix_buf, word);
        });
      } else {
        pre_tokenize(steps, k + 1, p, prefix_buf, word);
      }
      break;
    }
  }
}

// tokenizer_io.cpp
std::shared_ptr<TokenizerImpl> parse_tokenizer_json(std::string_view text, const std::string& where);
std::shared_ptr<TokenizerImpl> load_gpt2_files(const std::string& dir);
std::string write_tokenizer_json(const TokenizerImpl& t);
nlohmann::json normalizer_to_json(const std::vector<NormStep>& steps);

}  // namespace mindllm
