// Deduplication.
//   exact: a 64-bit hash of the text with case, whitespace and punctuation removed (so copies
//          that differ only in spacing or punctuation match)
//   near:  MinHash signatures (num_perm 32-bit minima) of shingles and LSH with `bands` bands of
//          `rows` rows: a document whose band values equal those of an earlier kept document in
//          any band is a near duplicate. P(candidate | Jaccard s) = 1 - (1 - s^rows)^bands;
//          16 x 8 has its threshold (1/b)^(1/r) near 0.71.
//
// Shingles: the text is split into tokens - every Han character alone, runs of other
// non-space, non-punctuation characters as words (ASCII lowercased) - and a shingle is n
// consecutive tokens joined by one space (n = char_ngram for Chinese documents, word_ngram
// otherwise; one shingle of all tokens when there are fewer than n). Its hash is datasketch's
// sha1_hash32: the first 4 bytes of SHA-1 of its UTF-8 bytes, little-endian.
//
// Permutations are datasketch's (datasketch/minhash.py), chosen by `scheme`:
//   affine32 (default; datasketch >= 2.0's default): h' = fmix32(h) (MurmurHash3's finalizer),
//            value = a*h' + b mod 2^32 with a odd - a bijection, so no collisions are added
//   legacy   (datasketch < 2.0): value = ((a*h + b) mod 2^64 mod (2^61 - 1)) & 0xffffffff, with
//            a in [1, 2^61-1), b in [0, 2^61-1) (numpy's uint64 product wraps before the mod)
// The (a, b) arrays come from `seed` (permutations()); handed to datasketch as
// MinHash(num_perm, scheme=..., permutations=(a, b)) it computes identical signatures
// (tests/reference/test_data_minhash.py).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/hashing.h"
#include "data/langid.h"

namespace mindllm::data {

struct DedupConfig {
  bool exact = true;
  bool near = true;
  int num_perm = 128;
  int bands = 16;
  int rows = 8;
  int word_ngram = 5;               // English shingles: word 5-grams
  int char_ngram = 5;               // Chinese shingles: character 5-grams
  std::string scheme = "affine32";  // "affine32" | "legacy" (datasketch's permutation schemes)
  uint64_t seed = 1;
};

void check_dedup_config(const DedupConfig& c);  // bad input if bands * rows > num_perm, ...

uint64_t exact_text_hash(std::string_view text);

// Calls f(shingle bytes) for every shingle of a document (repeats included), in order.
template <class F>
void for_each_shingle(std::string_view text, Lang lang, const DedupConfig& c, F&& f);

// Shingle hashes (sha1_hash32) of a document, duplicates removed, sorted.
std::vector<uint32_t> shingles(std::string_view text, Lang lang, const DedupConfig& c);

class MinHasher {
 public:
  explicit MinHasher(const DedupConfig& c);
  int num_perm() const { return static_cast<int>(a_.size()); }
  // out: num_perm values.
  void signature(std::string_view text, Lang lang, uint32_t* out) const;
  void signature_of_shingles(const std::vector<uint32_t>& sh, uint32_t* out) const;
  // The permutation parameters (legacy: 61-bit; affine32: 32-bit, a odd).
  const std::vector<uint64_t>& perm_a() const { return a_; }
  const std::vector<uint64_t>& perm_b() const { return b_; }
  bool legacy() const { return legacy_; }

 private:
  DedupConfig cfg_;
  bool legacy_ = false;
  std::vector<uint64_t> a_, b_;
  // Split for the vectorized loops: legacy a = a_hi * 2^32 + a_lo; affine32 uses a_lo, b32_.
  std::vector<uint32_t> a_lo_, a_hi_, b32_;
};

// Fraction of equal entries: the MinHash estimate of Jaccard similarity.
double signature_similarity(const uint32_t* a, const uint32_t* b, int n);

class LshIndex {
 public:
  LshIndex(int bands, int rows);
  // True when some band of `sig` matches a band of an inserted signature.
  bool query(const uint32_t* sig) const;
  void insert(const uint32_t* sig);
  size_t memory_bytes() const;
  // The key of band b of `sig` (equal band values, equal keys).
  uint64_t band_key(const uint32_t* sig, int b) const;
  int bands() const { return bands_; }

 private:
  int bands_, rows_;
  std::vector<FlatSet64> tables_;
};

}  // namespace mindllm::data

#include "data/dedup_shingles.h"
