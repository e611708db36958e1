// The byte-level BPE model: tokens as raw bytes, merges as (left id, right id) -> (rank, new id),
// and the merge loop (lowest rank first, leftmost first on ties, as Hugging Face and tiktoken do).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/types.h"

namespace mindllm {

// The GPT-2 byte <-> printable character table (bytes_to_unicode).
uint32_t byte_to_char(uint8_t b);
// -1 when the character is not in the table.
int char_to_byte(uint32_t cp);
// A token's file spelling (byte-level characters) -> raw bytes; false if some character is not a
// byte-level one (such tokens keep their UTF-8 text as their bytes).
bool byte_level_decode(std::string_view token, std::string* bytes);
std::string byte_level_encode(std::string_view bytes);

// Open addressing uint64 -> uint64 map for the merge table (read-mostly, no deletion).
class U64Map {
 public:
  void reserve(size_t n);
  void insert(uint64_t key, uint64_t value);  // keeps the first value for a key
  const uint64_t* find(uint64_t key) const {
    if (slots_.empty()) return nullptr;
    size_t i = hash(key) & mask_;
    while (true) {
      const Slot& s = slots_[i];
      if (s.key == key && s.used) return &s.value;
      if (!s.used) return nullptr;
      i = (i + 1) & mask_;
    }
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key = 0, value = 0;
    bool used = false;
  };
  static size_t hash(uint64_t k) { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> 20); }
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept;
};

struct BpeModel {
  // Tokens: file spelling and raw bytes, by id (ids absent from the vocabulary have empty text).
  std::vector<std::string> tokens;
  std::vector<std::string> token_bytes;
  std::vector<bool> present;
  std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>> bytes_to_id;  // byte-level tokens only
  std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>> token_to_id;  // file spelling
  std::vector<std::pair<TokenId, TokenId>> merges;                                    // by rank
  U64Map merge_map;      // (a << 32 | b) -> (rank << 32 | new id)
  int64_t byte_id[256];  // id of each single byte, -1 if none
  std::optional<TokenId> unk;
  std::string unk_token;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  std::optional<double> dropout;  // kept for saving; never applied (encoding is deterministic)

  size_t size() const { return tokens.size(); }
  // Adds a token with the given id (from a file): bad_input on duplicates. `where` names the file.
  void add_token(const std::string& spelling, TokenId id, const std::string& where);
  // Adds merge of two spellings; bad_input when a part or the result is not in the vocabulary.
  void add_merge(std::string_view left, std::string_view right, const std::string& where);
  void finish();  // builds byte_id

  // Appends the ids of one pre-tokenized word (raw bytes) to out.
  void encode_word(std::string_view word, std::vector<TokenId>& out) const;
};

}  // namespace mindllm
