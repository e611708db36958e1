#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/attention_paged.h"

namespace mindllm {

void HostKvStorage::grow(int64_t n_blocks, size_t block_bytes) {
  while ((int64_t)blocks_.size() < n_blocks) {
    if (room_ < block_bytes) {  // a new chunk of about 4 blocks (at least 2 MiB)
      room_ = huge_round(4 * block_bytes);
      chunks_.push_back(huge_alloc(room_));
      next_ = chunks_.back().get();
    }
    blocks_.push_back(next_);
    next_ += block_bytes, room_ -= block_bytes;
  }
}

void HostKvStorage::copy_block(int dst, int src, size_t block_bytes) {
  std::memcpy(blocks_[dst], blocks_[src], block_bytes);
}

KvCache::KvCache(const ModelConfig& cfg, int block_size, int64_t max_positions, KvType type,
                 std::unique_ptr<KvStorage> storage)
    : n_layers_(cfg.n_layers), block_size_(block_size), kv_dim_(cfg.kv_dim()),
      row_stride_(!storage || storage->on_host() ? host_row_stride(type, cfg.kv_dim()) : cfg.kv_dim()), type_(type),
      block_bytes_((size_t)block_size * kv_row_bytes(type, row_stride_)),
      max_blocks_(max_positions > 0 ? (max_positions + block_size - 1) / block_size : 0),
      store_(storage ? std::move(storage) : std::make_unique<HostKvStorage>()) {
  MINDLLM_CHECK(block_size > 0, "KvCache: block size must be positive");
  check_type(cfg, type);
}

int KvCache::host_row_stride(KvType type, int kv_dim) {
  return kv_row_bytes(type, kv_dim) % 1024 == 0 ? kv_dim + kKvQ8Block : kv_dim;
}

void KvCache::check_type(const ModelConfig& cfg, KvType type) {
  if (type == KvType::q8_0 && cfg.head_dim % kKvQ8Block != 0)
    bad_input("a q8_0 K/V cache needs a head size that is a multiple of " + std::to_string(kKvQ8Block) +
              "; this model's is " + std::to_string(cfg.head_dim) + " (use --kv-cache bf16)");
}

const KvCache::Sequence& KvCache::seq_at(int seq) const {
  MINDLLM_CHECK(seq >= 0 && seq < (int)seqs_.size() && seqs_[seq].live, "KvCache: no sequence " + std::to_string(seq));
  return seqs_[seq];
}
KvCache::Sequence& KvCache::seq_at(int seq) {
  return const_cast<Sequence&>(static_cast<const KvCache*>(this)->seq_at(seq));
}

int KvCache::create() {
  for (size_t i = 0; i < seqs_.size(); i++)
    if (!seqs_[i].live) {
      seqs_[i] = Sequence{true, {}, {}};
      return static_cast<int>(i);
    }
  seqs_.push_back(Sequence{true, {}, {}});
  return static_cast<int>(seqs_.size()) - 1;
}

int KvCache::fork(int seq) {
  int id = create();
  Sequence& src = seq_at(seq);  // after create(): seqs_ may have moved
  Sequence& dst = seqs_[id];
  dst.tokens = src.tokens;
  dst.blocks = src.blocks;
  for (int b : dst.blocks) refs_[b]++;
  return id;
}

void KvCache::release(int seq) {
  if (prefix_cache_) keep_prefix(seq_at(seq));
  truncate(seq, 0);
  seqs_[seq] = Sequence{};
}

int KvCache::live_sequences() const {
  return static_cast<int>(std::count_if(seqs_.begin(), seqs_.end(), [](const Sequence& s) { return s.live; }));
}

int64_t KvCache::blocks_in_use() const { return n_blocks_ - static_cast<int64_t>(free_.size()); }

int KvCache::new_block() {
  if (free_.empty() && prefix_cache_ && n_blocks_ >= max_blocks_) evict_prefix_block();
  if (!free_.empty()) {
    int b = free_.back();
    free_.pop_back();
    refs_[b] = 1;
    return b;
  }
  if (max_blocks_ > 0 && n_blocks_ >= max_blocks_)
    bad_input("the K/V cache is full (" + std::to_string(max_blocks_ * block_size_) + " positions)");
  store_->grow(n_blocks_ + 1, block_total_bytes());
  refs_.push_back(1);
  return static_cast<int>(n_blocks_++);
}

void KvCache::drop_block(int b) {
  if (--refs_[b] == 0) free_.push_back(b);
}

void KvCache::truncate(int seq, int len) {
  Sequence& s = seq_at(seq);
  MINDLLM_CHECK(len >= 0 && len <= (int)s.tokens.size(), "KvCache: truncate beyond the sequence");
  s.tokens.resize(len);
  const size_t keep = (len + block_size_ - 1) / block_size_;
  while (s.blocks.size() > keep) {
    drop_block(s.blocks.back());
    s.blocks.pop_back();
  }
}

void KvCache::reserve(int seq, int new_len) {
  Sequence& s = seq_at(seq);
  const int len = static_cast<int>(s.tokens.size());
  MINDLLM_CHECK(new_len >= len, "KvCache: reserve shrinks");
  // Copy-on-write: the partly filled last block is written next; it must be this sequence's own.
  if (len % block_size_ != 0 && new_len > len) {
    int& last = s.blocks.back();
    if (refs_[last] > 1) {
      int b = new_block();
      store_->copy_block(b, last, block_total_bytes());
      drop_block(last);
      last = b;
    }
  }
  while ((int64_t)s.blocks.size() * block_size_ < new_len) s.blocks.push_back(new_block());
}

void KvCache::append(int seq, std::span<const int32_t> toks) {
  Sequence& s = seq_at(seq);
  MINDLLM_CHECK((int64_t)(s.blocks.size()) * block_size_ >= (int64_t)(s.tokens.size() + toks.size()),
                "KvCache: append without reserve");
  s.tokens.insert(s.tokens.end(), toks.begin(), toks.end());
}

// ---- The prefix cache ----

size_t KvCache::PrefixKeyHash::operator()(const PrefixKey& k) const {
  uint64_t h = k.parent * 0x9E3779B97F4A7C15ull;
  for (int32_t t : k.tokens) h = (h ^ static_cast<uint32_t>(t)) * 0x100000001B3ull;  // FNV-1a over the ids
  return static_cast<size_t>(h);
}

void KvCache::enable_prefix_cache() {
  MINDLLM_CHECK(max_blocks_ > 0, "KvCache: the prefix cache needs a bounded cache");
  prefix_cache_ = true;
}

int KvCache::find_prefix(uint64_t parent, std::span<const int32_t> toks) const {
  auto it = prefix_.find(PrefixKey{parent, {toks.begin(), toks.end()}});
  return it == prefix_.end() ? -1 : it->second;
}

// The cached blocks holding the first whole blocks of `tokens`, at most max_blocks.
std::vector<int> KvCache::prefix_chain(std::span<const int32_t> tokens, size_t max_blocks) const {
  std::vector<int> chain;
  uint64_t parent = 0;
  for (size_t i = 0; i < max_blocks && (i + 1) * block_size_ <= tokens.size(); i++) {
    const int b = find_prefix(parent, tokens.subspan(i * block_size_, block_size_));
    if (b < 0) break;
    chain.push_back(b);
    parent = cached_[b].id;
  }
  return chain;
}

int KvCache::cached_prefix(std::span<const int32_t> tokens) const {
  if (!prefix_cache_) return 0;
  return static_cast<int>(prefix_chain(tokens, tokens.size()).size()) * block_size_;
}

int KvCache::create_from_prefix(std::span<const int32_t> tokens, int len) {
  MINDLLM_CHECK(len >= 0 && len <= (int)tokens.size(), "KvCache: create_from_prefix beyond the tokens");
  const std::vector<int> chain = prefix_chain(tokens, (len + block_size_ - 1) / block_size_);
  MINDLLM_CHECK((int64_t)chain.size() * block_size_ >= len, "KvCache: create_from_prefix beyond the cached prefix");
  const int64_t now = ++clock_;
  for (int b : chain) refs_[b]++, cached_[b].used = now;
  const int id = create();
  seqs_[id].blocks = chain;
  seqs_[id].tokens.assign(tokens.begin(), tokens.begin() + chain.size() * block_size_);
  truncate(id, len);
  return id;
}

// Caches the full blocks of a sequence being released (the cache holds a reference to each); a
// block whose tokens and prefix are cached already is only marked used.
void KvCache::keep_prefix(const Sequence& s) {
  if ((int64_t)cached_.size() < n_blocks_) cached_.resize(n_blocks_);
  const int64_t now = ++clock_;
  uint64_t parent = 0;
  for (size_t i = 0; i < s.tokens.size() / block_size_; i++) {
    std::span<const int32_t> toks(s.tokens.data() + i * block_size_, block_size_);
    int b = find_prefix(parent, toks);
    if (b < 0) {
      b = s.blocks[i];
      if (cached_[b].id != 0) break;  // cached under another prefix: cannot happen, kept safe
      cached_[b] =
          PrefixEntry{next_prefix_id_++, static_cast<int>(i), 0, PrefixKey{parent, {toks.begin(), toks.end()}}};
      prefix_.emplace(cached_[b].key, b);
      refs_[b]++;
    }
    cached_[b].used = now;
    parent = cached_[b].id;
  }
}

// Frees the least recently used cached block no sequence holds (of equal age, the deepest: a
// chain loses its tail first). False: none.
bool KvCache::evict_prefix_block() {
  int victim = -1;
  for (size_t b = 0; b < cached_.size(); b++) {
    const PrefixEntry& e = cached_[b];
    if (e.id == 0 || refs_[b] != 1) continue;
    if (victim < 0 || e.used < cached_[victim].used ||
        (e.used == cached_[victim].used && e.depth > cached_[victim].depth))
      victim = static_cast<int>(b);
  }
  if (victim < 0) return false;
  prefix_.erase(cached_[victim].key);
  cached_[victim] = PrefixEntry{};
  drop_block(victim);
  return true;
}

void KvCache::store(int layer, int block, int row, const float* k, const float* v) {
  MINDLLM_CHECK(store_->on_host(), "KvCache::store: the blocks are on a device");
  uint8_t* base =
      store_->block(block) + (size_t)(2 * layer) * block_bytes_ + (size_t)row * kv_row_bytes(type_, row_stride_);
  cpu::kv_encode_row(type_, k, kv_dim_, base);
  cpu::kv_encode_row(type_, v, kv_dim_, base + block_bytes_);
}

}  // namespace mindllm
