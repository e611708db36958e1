// A caller-owned K/V cache for inference (gemma.cpp's habit: the caller owns the state, the
// engine is stateless between calls). Keys and values live in fixed-size blocks of
// `block_size` positions; each block holds every layer's keys and values for its positions.
// A sequence is its tokens plus a block table (as vLLM's paged attention). Sequences are
// independent; fork() shares the full blocks of a common prefix (stored once, reference
// counted) and copies a partly filled last block, so prefixes cost no recomputation and no
// copy beyond one block. Blocks are recycled when sequences shrink or are released.
//
// With the prefix cache on (vLLM's automatic prefix caching), release() keeps a sequence's full
// blocks, each keyed by its tokens and the key of the block before it (a chain: a block matches
// only after the same whole prefix); a new sequence takes the longest cached block prefix of its
// tokens (create_from_prefix) and computes only the rest. Cached blocks nobody holds are evicted,
// least recently used first (the deepest of a chain first), when a block is needed and the budget
// is reached: they never take room a live sequence needs.
//
// Keys and values are stored in fp32, in bf16 (round to nearest even: half the bytes that
// attention reads per decoded token; the engine picks it for quantised weights, Engine::kv_type),
// or in q8_0 (llama.cpp's int8 blocks of 32 with an fp16 scale: 17/64 of fp32's bytes; needs a
// head size that is a multiple of 32). core/types.h has the formats, kernels/cpu/attention_paged
// writes and reads them.
//
// The bookkeeping above is one implementation for every device; only where the blocks' bytes live
// is a KvStorage: host memory (HostKvStorage, grows a block at a time) or a device pool allocated
// once (model/cuda/cuda_engine.h, sized by the cache's budget). Copy-on-write copies go through
// the storage (on the device for a device pool).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/huge_pages.h"
#include "core/types.h"
#include "model/config.h"

namespace mindllm {

// Where a KvCache's blocks live. A block is `block_bytes` bytes: [layer][k|v][block_size][kv_dim].
class KvStorage {
 public:
  virtual ~KvStorage() = default;
  // Makes blocks [0, n_blocks) exist (n_blocks only grows; called with one more each time).
  virtual void grow(int64_t n_blocks, size_t block_bytes) = 0;
  virtual uint8_t* block(int b) const = 0;  // host or device address of block b
  virtual void copy_block(int dst, int src, size_t block_bytes) = 0;
  virtual bool on_host() const { return true; }
};

// Host memory in huge-page chunks of a few blocks each (core/huge_pages.h: decode reads one head's
// slice per cache row, a 4 KiB page apart in a wide model; addresses stay put as the cache grows).
class HostKvStorage : public KvStorage {
 public:
  void grow(int64_t n_blocks, size_t block_bytes) override;
  uint8_t* block(int b) const override { return blocks_[b]; }
  void copy_block(int dst, int src, size_t block_bytes) override;

 private:
  std::vector<HugeBuffer> chunks_;
  std::vector<uint8_t*> blocks_;
  uint8_t* next_ = nullptr;  // the last chunk's free bytes
  size_t room_ = 0;
};

class KvCache {
 public:
  // max_positions: total positions over all sequences (0: grows as needed); more is bad input.
  // storage: where the blocks live (null: host memory). A q8_0 cache for a head size that is not a
  // multiple of 32 is bad input.
  explicit KvCache(const ModelConfig& cfg, int block_size = 16, int64_t max_positions = 0, KvType type = KvType::f32,
                   std::unique_ptr<KvStorage> storage = nullptr);
  // Bad input when a cache of `type` cannot hold cfg's heads (q8_0: head size not a multiple of 32).
  static void check_type(const ModelConfig& cfg, KvType type);

  int create();                     // a new empty sequence; returns its id
  int fork(int seq);                // a new sequence holding what `seq` holds
  void release(int seq);            // frees the sequence's blocks (the prefix cache keeps the full ones) and its id
  void truncate(int seq, int len);  // keeps positions [0, len)
  int length(int seq) const { return static_cast<int>(seq_at(seq).tokens.size()); }
  const std::vector<int32_t>& tokens(int seq) const { return seq_at(seq).tokens; }
  int live_sequences() const;
  int block_size() const { return block_size_; }
  int64_t blocks_in_use() const;

  // The prefix cache; needs a bounded cache (max_positions > 0). Off by default.
  void enable_prefix_cache();
  // Tokens (whole blocks) of the longest cached prefix of `tokens`.
  int cached_prefix(std::span<const int32_t> tokens) const;
  // A new sequence holding positions [0, len) of `tokens` from the cache (len <= cached_prefix(tokens)).
  int create_from_prefix(std::span<const int32_t> tokens, int len);
  int64_t cached_blocks() const { return static_cast<int64_t>(prefix_.size()); }

  // For the engine. Makes room for positions [0, new_len) of `seq`, owning (not sharing) every
  // block that positions >= length(seq) fall in; then `append` records the tokens.
  void reserve(int seq, int new_len);
  void append(int seq, std::span<const int32_t> toks);
  const std::vector<int>& block_table(int seq) const { return seq_at(seq).blocks; }
  KvType type() const { return type_; }
  // Values from one position's row to the next: kv_dim, or in host memory one 32-value block more
  // where a row's bytes are a multiple of 1 KiB (host_row_stride). Without it every position's row
  // starts at the same offset of a 4 KiB page, and decode, which reads one head's slice of each,
  // keeps hitting the same few L1 sets (MindLLM-1.3B's 4 KiB bf16 rows: attention at 512
  // positions took 19-25 ms per token at 1 thread against 7 ms of reading).
  int row_stride() const { return row_stride_; }
  static int host_row_stride(KvType type, int kv_dim);
  // Rows of block b for one layer: block_size rows of kv_row_bytes(type(), row_stride()) bytes, the
  // first kv_dim values of each a position's keys (values);
  // device addresses when the storage is on a device.
  const void* keys(int layer, int block) const { return store_->block(block) + (size_t)(2 * layer) * block_bytes_; }
  const void* values(int layer, int block) const {
    return store_->block(block) + (size_t)(2 * layer + 1) * block_bytes_;
  }
  const KvStorage& storage() const { return *store_; }
  // Bytes of one block (every layer's keys and values), of this cache or of one for cfg.
  size_t block_total_bytes() const { return 2 * n_layers_ * block_bytes_; }
  static size_t block_total_bytes(const ModelConfig& cfg, int block_size, KvType type) {
    return 2 * (size_t)cfg.n_layers * block_size * kv_row_bytes(type, cfg.kv_dim());
  }
  // Writes one position's key and value rows (kv_dim floats each) at row `row` of block b (host storage).
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
  // The prefix cache: a block's key is its tokens and the id of the entry before it (0: none).
  struct PrefixKey {
    uint64_t parent = 0;
    std::vector<int32_t> tokens;
    bool operator==(const PrefixKey&) const = default;
  };
  struct PrefixKeyHash {
    size_t operator()(const PrefixKey& k) const;
  };
  struct PrefixEntry {
    uint64_t id = 0;  // unique, never reused (0: the block is not cached)
    int depth = 0;    // index of the block in its chain
    int64_t used = 0;
    PrefixKey key;
  };
  void keep_prefix(const Sequence& s);
  bool evict_prefix_block();
  int find_prefix(uint64_t parent, std::span<const int32_t> tokens) const;  // its block, or -1
  std::vector<int> prefix_chain(std::span<const int32_t> tokens, size_t max_blocks) const;

  int n_layers_, block_size_, kv_dim_, row_stride_;
  KvType type_;
  size_t block_bytes_;  // one layer's keys (or values) of a block
  int64_t max_blocks_;  // 0: unbounded
  std::unique_ptr<KvStorage> store_;
  int64_t n_blocks_ = 0;  // blocks made so far (in use or free)
  std::vector<int> refs_, free_;
  std::vector<Sequence> seqs_;
  bool prefix_cache_ = false;
  std::unordered_map<PrefixKey, int, PrefixKeyHash> prefix_;  // key -> block
  std::vector<PrefixEntry> cached_;                           // per block
  uint64_t next_prefix_id_ = 1;
  int64_t clock_ = 0;
};

}  // namespace mindllm
