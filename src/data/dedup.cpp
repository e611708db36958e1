#include "data/dedup.h"

#include <algorithm>

#include "core/error.h"
#include "data/utf8.h"

namespace mindllm::data {

void check_dedup_config(const DedupConfig& c) {
  if (c.num_perm < 1 || c.num_perm > 1024) bad_input("dedup.num_perm: must be in 1..1024");
  if (c.bands < 1 || c.rows < 1 || c.bands * c.rows > c.num_perm)
    bad_input("dedup.bands x dedup.rows: must be >= 1 and bands * rows <= num_perm (" + std::to_string(c.bands) + " x " +
              std::to_string(c.rows) + " > " + std::to_string(c.num_perm) + ")");
  if (c.word_ngram < 1 || c.char_ngram < 1) bad_input("dedup.word_ngram / dedup.char_ngram: must be >= 1");
}

uint64_t exact_text_hash(std::string_view s) {
  std::string norm;
  norm.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t len = utf8_decode(s, i, &cp);
    if (len == 0) { i++; continue; }
    if (!is_space(cp) && !is_punct(cp)) {
      if (cp < 0x80) norm.push_back(static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
      else norm.append(s.substr(i, len));
    }
    i += len;
  }
  return hash_str(norm, 0x5eed);
}

std::vector<uint64_t> shingles(std::string_view s, Lang lang, const DedupConfig& c) {
  // Tokens: lowercase words for Latin text, characters for Chinese; spaces and punctuation dropped.
  std::vector<uint64_t> tok;
  bool chars = lang == Lang::zh;
  std::string word;
  auto end_word = [&] {
    if (!word.empty()) tok.push_back(hash_str(word));
    word.clear();
  };
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t len = utf8_decode(s, i, &cp);
    if (len == 0) len = 1, cp = 0xFFFD;
    if (is_space(cp) || is_punct(cp)) {
      end_word();
    } else if (chars || is_han(cp)) {
      end_word();
      tok.push_back(hash_bytes(s.data() + i, len));
    } else if (cp < 0x80) {
      word.push_back(static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
    } else {
      word.append(s.substr(i, len));
    }
    i += len;
  }
  end_word();
  size_t n = static_cast<size_t>(chars ? c.char_ngram : c.word_ngram);
  std::vector<uint64_t> out;
  if (tok.empty()) return out;
  if (tok.size() < n) n = tok.size();
  out.reserve(tok.size() - n + 1);
  for (size_t i = 0; i + n <= tok.size(); i++) {
    uint64_t h = 0x243F6A8885A308D3ull;
    for (size_t k = 0; k < n; k++) h = mix64(h ^ tok[i + k]) + k;
    out.push_back(h);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

MinHasher::MinHasher(const DedupConfig& c) : cfg_(c) {
  uint64_t st = c.seed * 0x9E3779B97F4A7C15ull + 12345;
  for (int i = 0; i < c.num_perm; i++) {
    st += 0x9E3779B97F4A7C15ull;
    seeds_.push_back(static_cast<uint32_t>(mix64(st)));
  }
}

// The hot loop: for each shingle, num_perm permuted values, keep the minima. Written so the
// compiler vectorizes over permutations; an AVX2 clone is picked at run time where available.
__attribute__((target_clones("avx2", "default"))) static void minhash_update(const uint64_t* sh, size_t n,
                                                                            const uint32_t* seeds, uint32_t* mins,
                                                                            int np) {
  for (size_t s = 0; s < n; s++) {
    uint32_t h = static_cast<uint32_t>(sh[s] ^ (sh[s] >> 32));
    for (int i = 0; i < np; i++) {
      uint32_t x = h ^ seeds[i];
      x ^= x >> 16;
      x *= 0x85EBCA6Bu;
      x ^= x >> 13;
      x *= 0xC2B2AE35u;
      x ^= x >> 16;
      mins[i] = x < mins[i] ? x : mins[i];
    }
  }
}

void MinHasher::signature_of_shingles(const std::vector<uint64_t>& sh, uint32_t* out) const {
  int np = num_perm();
  std::fill(out, out + np, 0xFFFFFFFFu);
  minhash_update(sh.data(), sh.size(), seeds_.data(), out, np);
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
