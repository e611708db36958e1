#include "data/dedup.h"

#include <algorithm>

#include "core/error.h"
#include "data/sha1.h"
#include "data/char_class.h"

namespace mindllm::data {

namespace {
constexpr uint64_t kMersenne61 = (1ull << 61) - 1;  // datasketch's _mersenne_prime
}

void check_dedup_config(const DedupConfig& c) {
  if (c.num_perm < 1 || c.num_perm > 1024) bad_input("dedup.num_perm: must be in 1..1024");
  if (c.bands < 1 || c.rows < 1 || c.bands * c.rows > c.num_perm)
    bad_input("dedup.bands x dedup.rows: must be >= 1 and bands * rows <= num_perm (" + std::to_string(c.bands) +
              " x " + std::to_string(c.rows) + " > " + std::to_string(c.num_perm) + ")");
  if (c.word_ngram < 1 || c.char_ngram < 1) bad_input("dedup.word_ngram / dedup.char_ngram: must be >= 1");
  if (c.scheme != "affine32" && c.scheme != "legacy")
    bad_input("dedup.scheme: '" + c.scheme + "' is not one of affine32, legacy");
}

uint64_t exact_text_hash(std::string_view s) {
  std::string norm;
  norm.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t len = utf8::decode(s, i, &cp);
    if (len == 0) {
      i++;
      continue;
    }
    if (!is_space(cp) && !is_punct(cp)) {
      if (cp < 0x80) norm.push_back(static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
      else norm.append(s.substr(i, len));
    }
    i += len;
  }
  return hash_str(norm, 0x5eed);
}

std::vector<uint32_t> shingles(std::string_view s, Lang lang, const DedupConfig& c) {
  thread_local std::string buf;
  thread_local std::vector<uint32_t> start;
  thread_local std::vector<std::string_view> views;
  views.clear();
  shingle_tokens(s, buf, start);  // as for_each_shingle, with the buffer kept for the views
  size_t nt = start.size();
  if (nt == 0) return {};
  size_t n = std::min(nt, static_cast<size_t>(lang == Lang::zh ? c.char_ngram : c.word_ngram));
  for (size_t i = 0; i + n <= nt; i++) {
    size_t end = i + n < nt ? start[i + n] - 1 : buf.size();
    views.emplace_back(buf.data() + start[i], end - start[i]);
  }
  std::vector<uint32_t> out(views.size());
  sha1_hash32_many(views.data(), views.size(), out.data());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

MinHasher::MinHasher(const DedupConfig& c) : cfg_(c), legacy_(c.scheme == "legacy") {
  // splitmix64 stream from the seed. legacy: a in [1, p), b in [0, p) by rejection from 61-bit
  // draws (as datasketch's randint(1, p) / randint(0, p)); affine32: a odd, b any 32-bit value.
  uint64_t st = c.seed * 0x9E3779B97F4A7C15ull + 12345;
  auto draw = [&] { return mix64(st += 0x9E3779B97F4A7C15ull); };
  for (int i = 0; i < c.num_perm; i++) {
    uint64_t a, b;
    if (legacy_) {
      do a = draw() >> 3;
      while (a == 0 || a >= kMersenne61);
      do b = draw() >> 3;
      while (b >= kMersenne61);
    } else {
      uint64_t r = draw();
      a = (r & 0xFFFFFFFFu) | 1u;
      b = r >> 32;
    }
    a_.push_back(a), b_.push_back(b);
    a_lo_.push_back(static_cast<uint32_t>(a));
    a_hi_.push_back(static_cast<uint32_t>(a >> 32));
    b32_.push_back(static_cast<uint32_t>(b));
  }
}

// The hot loops: for each shingle hash, num_perm permuted values, keep the minima. Written so
// the compiler vectorizes over permutations; the widest clone the CPU has is picked at run time.
//
// legacy: x = a*h + b mod 2^64 with h < 2^32 is a_lo*h + ((a_hi*h mod 2^32) << 32) + b (no
// 64x64 multiply needed); x mod (2^61-1) = (x & p) + (x >> 61), minus p once if >= p.
__attribute__((target_clones("avx512f", "avx2", "default"))) static void minhash_legacy(const uint32_t* sh, size_t n,
                                                                                        const uint32_t* a_lo,
                                                                                        const uint32_t* a_hi,
                                                                                        const uint64_t* b,
                                                                                        uint32_t* mins, int np) {
  for (size_t s = 0; s < n; s++) {
    uint32_t h = sh[s];
    for (int i = 0; i < np; i++) {
      uint64_t x = static_cast<uint64_t>(a_lo[i]) * h + (static_cast<uint64_t>(a_hi[i] * h) << 32) + b[i];
      x = (x & kMersenne61) + (x >> 61);
      x = x >= kMersenne61 ? x - kMersenne61 : x;
      uint32_t v = static_cast<uint32_t>(x);
      mins[i] = v < mins[i] ? v : mins[i];
    }
  }
}

inline uint32_t fmix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  x *= 0xC2B2AE35u;
  return x ^ (x >> 16);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) static void minhash_affine32(const uint32_t* sh, size_t n,
                                                                                          const uint32_t* a,
                                                                                          const uint32_t* b,
                                                                                          uint32_t* mins, int np) {
  for (size_t s = 0; s < n; s++) {
    uint32_t h = fmix32(sh[s]);
    for (int i = 0; i < np; i++) {
      uint32_t v = a[i] * h + b[i];
      mins[i] = v < mins[i] ? v : mins[i];
    }
  }
}

void MinHasher::signature_of_shingles(const std::vector<uint32_t>& sh, uint32_t* out) const {
  int np = num_perm();
  std::fill(out, out + np, 0xFFFFFFFFu);  // datasketch's empty value (_max_hash)
  if (legacy_) minhash_legacy(sh.data(), sh.size(), a_lo_.data(), a_hi_.data(), b_.data(), out, np);
  else minhash_affine32(sh.data(), sh.size(), a_lo_.data(), b32_.data(), out, np);
}

void MinHasher::signature(std::string_view text, Lang lang, uint32_t* out) const {
  signature_of_shingles(shingles(text, lang, cfg_), out);
}

double signature_similarity(const uint32_t* a, const uint32_t* b, int n) {
  int eq = 0;
  for (int i = 0; i < n; i++) eq += a[i] == b[i];
  return n ? static_cast<double>(eq) / n : 0;
}

LshIndex::LshIndex(int bands, int rows) : bands_(bands), rows_(rows), tables_(static_cast<size_t>(bands)) {}

// A band is keyed by a 64-bit hash of its rows' values (datasketch keys by the bytes
// themselves; a false match needs a 64-bit collision, ~n^2 / 2^65 for n documents).
uint64_t LshIndex::band_key(const uint32_t* sig, int b) const {
  return hash_bytes(sig + static_cast<size_t>(b) * rows_, static_cast<size_t>(rows_) * 4, static_cast<uint64_t>(b));
}

bool LshIndex::query(const uint32_t* sig) const {
  for (int b = 0; b < bands_; b++)
    if (tables_[b].contains(band_key(sig, b))) return true;
  return false;
}

void LshIndex::insert(const uint32_t* sig) {
  for (int b = 0; b < bands_; b++) tables_[b].insert(band_key(sig, b));
}

size_t LshIndex::memory_bytes() const {
  size_t m = 0;
  for (auto& t : tables_) m += t.memory_bytes();
  return m;
}

}  // namespace mindllm::data
