// A caller-owned K/V cache for inference (gemma.cpp's habit: the caller owns the state, the
// engine is stateless between calls). Keys and values live in fixed-size blocks of
// `block_size` positions; each block holds every layer's keys and values for its positions.
// A sequence is its tokens plus a block table (as vLLM's paged attention). Sequences are
// independent; fork() shares the full blocks of a common prefix (stored once, reference
// counted) and copies a partly filled last block, so prefixes cost no recomputation and no
// copy beyond one block. Blocks are recycled when sequences shrink or are released.
// Keys and values are stored in fp32, or in bf16 (round to nearest even: half the bytes that
// attention reads per decoded token; the engine picks it for quantised weights, Engine::kv_type).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/config.h"

namespace mindllm {

enum class KvType : uint8_t { f32, bf16 };

class KvCache {
 public:
  // max_positions: total positions over all sequences (0: grows as needed); more is bad input.
  explicit KvCache(const ModelConfig& cfg, int block_size = 16, int64_t max_positions = 0, KvType type = KvType::f32);

  int create();                     // a new empty sequence; returns its id
  int fork(int seq);                // a new sequence holding what `seq` holds
  void release(int seq);            // frees the sequence's blocks and its id
  void truncate(int seq, int len);  // keeps positions [0, len)
  int length(int seq) const { return static_cast<int>(seq_at(seq).tokens.size()); }
  const std::vector<int32_t>& tokens(int seq) const { return seq_at(seq).tokens; }
  int live_sequences() const;
  int block_size() const { return block_size_; }
  int64_t blocks_in_use() const;

  // For the engine. Makes room for positions [0, new_len) of `seq`, owning (not sharing) every
  // block that positions >= length(seq) fall in; then `append` records the tokens.
  void reserve(int seq, int new_len);
  void append(int seq, std::span<const int32_t> toks);
  const std::vector<int>& block_table(int seq) const { return seq_at(seq).blocks; }
  KvType type() const { return type_; }
  // Rows of block b for one layer: [block_size, kv_dim] elements of type() (float or bf16 bits).
  const void* keys(int layer, int block) const { return data_[block].get() + (size_t)(2 * layer) * block_bytes_; }
  const void* values(int layer, int block) const { return data_[block].get() + (size_t)(2 * layer + 1) * block_bytes_; }
  // Writes one position's key and value rows (kv_dim floats each) at row `row` of block b.
  void store(int layer, int block, int row, const float* k, const float* v);

 private:
  struct Sequence {
    bool live = false;
    std::vector<int32_t> tokens;
    std::vector<int> blocks;
  };
  const Sequence& seq_at(int seq) const;
  Sequence& seq_at(int seq);
  int new_block();
  void drop_block(int b);

  int n_layers_, block_size_, kv_dim_;
  KvType type_;
  size_t block_bytes_;                            // one layer's keys (or values) of a block
  int64_t max_blocks_;                            // 0: unbounded
  std::vector<std::unique_ptr<uint8_t[]>> data_;  // per block: [layer][k|v][block_size][kv_dim]
  std::vector<int> refs_, free_;
  std::vector<Sequence> seqs_;
};

}  // namespace mindllm
