// Deduplication.
//   exact: a 64-bit hash of the text with case, whitespace and punctuation removed (so copies
//          that differ only in spacing or punctuation match)
//   near:  MinHash signatures (num_perm 32-bit minima) of shingles - word n-grams for English
//          and other Latin text, character n-grams for Chinese - and LSH with `bands` bands of
//          `rows` rows: a document whose band hashes collide with an earlier kept document in any
//          band is a near duplicate. P(candidate | Jaccard s) = 1 - (1 - s^rows)^bands; 16 x 8
//          has its threshold (1/b)^(1/r) near 0.71.
// A permutation is h -> fmix32(h ^ seed_i) (MurmurHash3's finalizer: a bijection on 32 bits).
#pragma once
#include <cstdint>
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
  int word_ngram = 5;  // English shingles: word 5-grams
  int char_ngram = 5;  // Chinese shingles: character 5-grams
  uint64_t seed = 1;
};

void check_dedup_config(const DedupConfig& c);  // bad input if bands * rows > num_perm, ...

uint64_t exact_text_hash(std::string_view text);

// Shingle hashes of a document (duplicates removed, sorted).
std::vector<uint64_t> shingles(std::string_view text, Lang lang, const DedupConfig& c);

class MinHasher {
 public:
  explicit MinHasher(const DedupConfig& c);
  int num_perm() const { return static_cast<int>(seeds_.size()); }
  // out: num_perm values.
  void signature(std::string_view text, Lang lang, uint32_t* out) const;
  void signature_of_shingles(const std::vector<uint64_t>& sh, uint32_t* out) const;

 private:
  DedupConfig cfg_;
  std::vector<uint32_t> seeds_;
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

 private:
  uint64_t band_key(const uint32_t* sig, int b) const;
  int bands_, rows_;
  std::vector<FlatSet64> tables_;
};

}  // namespace mindllm::data
