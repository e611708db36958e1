// Token shards, interchangeable with llm.c's: a 1024-byte header of 256 little-endian int32,
//   [0] magic: 20240520 (uint16 ids, [1] = 1) or 20240801 (uint32 ids, [1] = 7)
//   [2] token count   [3] vocab size (0 = unknown)   [4],[5] tokenizer hash (low, high 32 bits; 0 = unknown)
// then the token ids, little-endian. Documents are separated by the EOS id. See docs/formats.md.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/hash.h"

namespace mindllm {

constexpr int32_t kShardMagicU16 = 20240520, kShardVersionU16 = 1;
constexpr int32_t kShardMagicU32 = 20240801, kShardVersionU32 = 7;
constexpr size_t kShardHeaderBytes = 1024;

struct ShardHeader {
  int token_bytes = 2;  // 2 or 4
  uint64_t count = 0;
  uint32_t vocab_size = 0;
  uint64_t tokenizer_hash = 0;
};

// Writes a shard atomically; ids must fit the width (uint16 when vocab_size <= 65536).
void write_shard(const std::string& path, std::span<const uint32_t> tokens, uint32_t vocab_size,
                 uint64_t tokenizer_hash = 0);

// A memory-mapped shard, validated on open (magic, version, size); bad files are bad input.
class Shard {
 public:
  explicit Shard(const std::string& path);
  const ShardHeader& header() const { return header_; }
  uint64_t size() const { return header_.count; }
  uint32_t at(uint64_t i) const;
  // Copies tokens [begin, begin + n) into out.
  void copy(uint64_t begin, uint64_t n, int32_t* out) const;
  const std::string& path() const { return map_.path(); }

 private:
  MappedFile map_;
  ShardHeader header_;
  const uint8_t* data_ = nullptr;
};

// The shards of a split (<dir>/train-*.bin or <dir>/val-*.bin, in file-name order) seen as one
// stream of tokens. Checks that every id is below vocab_size when one is given (> 0).
class TokenStream {
 public:
  TokenStream(const std::string& dir, const std::string& split, uint32_t model_vocab_size);
  uint64_t size() const { return total_; }
  // Copies tokens [begin, begin + n) of the concatenated stream into out.
  void copy(uint64_t begin, uint64_t n, int32_t* out) const;
  const std::vector<Shard>& shards() const { return shards_; }

 private:
  std::vector<Shard> shards_;
  std::vector<uint64_t> starts_;
  uint64_t total_ = 0;
};

}  // namespace mindllm
