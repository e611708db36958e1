// Byte-level BPE tokenizer, compatible with Hugging Face `tokenizers` files: tokenizer.json
// (BPE model; ByteLevel / Split / Digits / Sequence pre-tokenizers; NFC / NFKC / NFD / NFKD /
// Lowercase / Sequence normalizers; added tokens with lstrip / rstrip / single_word / normalized)
// and GPT-2 style vocab.json + merges.txt (+ added_tokens.json, special_tokens_map.json).
// Encoding gives the same ids as Hugging Face; decode(encode(x)) == x for every byte string.
// See docs/tokenizer.md.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.h"

namespace mindllm {

struct TokenizerImpl;
enum class SplitPattern;  // tokenizer/pretokenize.h

class Tokenizer {
 public:
  // A tokenizer.json file, or a directory with tokenizer.json or vocab.json + merges.txt
  // (+ added_tokens.json, special_tokens_map.json). Bad files are bad_input naming the file.
  static Tokenizer load(const std::string& path);
  // Parses tokenizer.json text; `where` names it in errors.
  static Tokenizer from_json(std::string_view json_text, const std::string& where);

  // Ids of `text` with added/special tokens recognized; no BOS/EOS added. Any bytes are accepted
  // (invalid UTF-8 is encoded byte by byte).
  std::vector<TokenId> encode(std::string_view text) const;
  void encode_append(std::string_view text, std::vector<TokenId>& out) const;
  std::vector<std::vector<TokenId>> encode_batch(const std::vector<std::string>& texts, int threads) const;
  // One long text on several threads: cut only where the result cannot change (before a letter
  // that follows a newline), so the ids equal encode(text).
  std::vector<TokenId> encode_parallel(std::string_view text, int threads) const;

  // The bytes of the tokens, special tokens included. Unknown ids are bad_input.
  std::string decode(std::span<const TokenId> ids) const;
  // One token's bytes (empty for an unknown id).
  std::string_view token_bytes(TokenId id) const;

  size_t vocab_size() const;                                         // max id + 1, added tokens included
  std::optional<TokenId> token_to_id(std::string_view token) const;  // file spelling or added content
  std::optional<std::string> id_to_token(TokenId id) const;          // file spelling
  std::optional<TokenId> eos_id() const;
  uint64_t hash() const;  // stable content hash of vocabulary + merges + added tokens
  size_t num_merges() const;
  std::vector<std::pair<std::string, std::string>> merges() const;  // file spellings, by rank
  bool is_special(TokenId id) const;
  bool is_added(TokenId id) const;  // an added token (tokenizer.json's added_tokens), special or not
  // The pre-tokenizer's split pattern: its first Split step's, GPT-2's for a ByteLevel step with its
  // own regex; nullopt when it has neither.
  std::optional<SplitPattern> split_pattern() const;

  std::string to_json() const;                              // tokenizer.json text
  void save(const std::string& tokenizer_json_path) const;  // atomic

  const TokenizerImpl& impl() const { return *impl_; }
  explicit Tokenizer(std::shared_ptr<const TokenizerImpl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<const TokenizerImpl> impl_;
};

}  // namespace mindllm
