#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstring>
#include <cstdio>
#include <functional>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace mindllm {

namespace {
struct ByteTables {
  uint32_t to_char[256];
  int16_t from_char[324];  // byte-level characters are all below U+0144
  ByteTables() {
    std::fill(std::begin(from_char), std::end(from_char), static_cast<int16_t>(-1));
    uint32_t n = 0;
    for (int b = 0; b < 256; b++) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      to_char[b] = printable ? static_cast<uint32_t>(b) : 256 + n++;
      from_char[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteTables& byte_tables() {
  static const ByteTables t;
  return t;
}
}  // namespace

uint32_t byte_to_char(uint8_t b) { return byte_tables().to_char[b]; }

int char_to_byte(uint32_t cp) { return cp < 324 ? byte_tables().from_char[cp] : -1; }

bool byte_level_decode(std::string_view token, std::string* bytes) {
  bytes->clear();
  const auto* s = reinterpret_cast<const unsigned char*>(token.data());
  for (size_t i = 0; i < token.size();) {
    int len;
    uint32_t cp = unicode::decode(s, i, token.size(), &len);
    int b = cp == unicode::kInvalid ? -1 : char_to_byte(cp);
    if (b < 0) return false;
    bytes->push_back(static_cast<char>(b));
    i += len;
  }
  return true;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) utf8::append(out, byte_to_char(b));
  return out;
}

size_t StringHash::operator()(std::string_view s) const noexcept {
  // FNV-1a over 8-byte words: fast and good enough for token strings.
  uint64_t h = 0xcbf29ce484222325ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  for (; i < s.size(); i++) h = (h ^ static_cast<unsigned char>(s[i])) * 0x100000001b3ull;
  return static_cast<size_t>(h ^ (h >> 32));
}

void U64Map::reserve(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n + 2) cap <<= 1;
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  size_ = 0;
  for (auto& s : old)
    if (s.used) insert(s.key, s.value);
}

void U64Map::insert(uint64_t key, uint64_t value) {
  if (2 * (size_ + 1) > slots_.size()) reserve(std::max<size_t>(size_ * 2, 16));
  size_t i = hash(key) & mask_;
  while (slots_[i].used && slots_[i].key != key) i = (i + 1) & mask_;
  if (!slots_[i].used) size_++;
  slots_[i].key = key;
  slots_[i].value = value;  // a later duplicate wins, as in Hugging Face's merge map
  slots_[i].used = true;
}

void BpeModel::add_token(const std::string& spelling, TokenId token, const std::string& where) {
  if (token < 0) bad_input(where + ": token id " + std::to_string(token) + " is negative");
  const size_t id = static_cast<size_t>(token);
  if (id >= tokens.size()) {
    tokens.resize(id + 1);
    token_bytes.resize(id + 1);
    present.resize(id + 1, false);
  }
  if (present[id])
    bad_input(where + ": token id " + std::to_string(id) + " is used twice (\"" + spelling + "\" and \"" + tokens[id] +
              "\")");
  if (!token_to_id.emplace(spelling, token).second) bad_input(where + ": token \"" + spelling + "\" appears twice");
  present[id] = true;
  tokens[id] = spelling;
  std::string bytes;
  if (byte_level_decode(spelling, &bytes)) {
    bytes_to_id.emplace(bytes, token);
    token_bytes[id] = std::move(bytes);
  } else {
    token_bytes[id] = spelling;
  }
}

void BpeModel::add_merge(std::string_view left, std::string_view right, const std::string& where) {
  auto find = [&](std::string_view t) -> TokenId {
    auto it = token_to_id.find(t);
    if (it == token_to_id.end())
      bad_input(where + ": merge " + std::to_string(merges.size()) + " (\"" + std::string(left) + "\" \"" +
                std::string(right) + "\") uses \"" + std::string(t) + "\", which is not in the vocabulary");
    return it->second;
  };
  TokenId a = find(left), b = find(right);
  std::string joined(left);
  joined += right;
  TokenId c = find(joined);
  uint64_t rank = merges.size();
  merges.emplace_back(a, b);
  merge_map.insert((static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b),
                   (rank << 32) | static_cast<uint32_t>(c));
}

void BpeModel::finish() {
  for (int b = 0; b < 256; b++) {
    char c = static_cast<char>(b);
    auto it = bytes_to_id.find(std::string_view(&c, 1));
    byte_id[b] = it == bytes_to_id.end() ? -1 : static_cast<int64_t>(it->second);
  }
  if (!unk_token.empty()) {
    auto it = token_to_id.find(unk_token);
    if (it != token_to_id.end()) unk = it->second;
  }
}

namespace {
constexpr uint64_t kNoMerge = ~0ull;

struct HeapEntry {
  uint64_t value;  // rank << 32 | new id
  uint32_t pos;
  bool operator>(const HeapEntry& o) const { return value != o.value ? value > o.value : pos > o.pos; }
};
}  // namespace

void BpeModel::encode_word(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (ignore_merges || word.size() == 1) {
    auto it = bytes_to_id.find(word);
    if (it != bytes_to_id.end()) {
      out.push_back(it->second);
      return;
    }
  }
  thread_local std::vector<uint32_t> syms;
  syms.clear();
  bool last_unk = false;
  for (unsigned char b : word) {
    int64_t id = byte_id[b];
    if (id >= 0) {
      syms.push_back(static_cast<uint32_t>(id));
      last_unk = false;
      continue;
    }
    if (byte_fallback) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      auto it = token_to_id.find(std::string_view(name));
      if (it != token_to_id.end()) {
        syms.push_back(it->second);
        last_unk = false;
        continue;
      }
    }
    if (unk) {
      if (!(fuse_unk && last_unk)) syms.push_back(*unk);
      last_unk = true;
    }
  }
  size_t m = syms.size();
  auto pair_value = [&](uint32_t a, uint32_t b) -> uint64_t {
    const uint64_t* v = merge_map.find((static_cast<uint64_t>(a) << 32) | b);
    return v ? *v : kNoMerge;
  };
  if (m <= 48) {
    // Short words: rescan for the lowest (rank, position); fewer steps than a heap for these sizes.
    uint64_t val[48];
    for (size_t i = 0; i + 1 < m; i++) val[i] = pair_value(syms[i], syms[i + 1]);
    while (m > 1) {
      size_t best = 0;
      for (size_t i = 1; i + 1 < m; i++)
        if (val[i] < val[best]) best = i;
      if (val[best] == kNoMerge) break;
      syms[best] = static_cast<uint32_t>(val[best]);
      for (size_t i = best + 1; i + 1 < m; i++) {
        syms[i] = syms[i + 1];
        val[i] = val[i + 1];
      }
      m--;
      if (best > 0) val[best - 1] = pair_value(syms[best - 1], syms[best]);
      if (best + 1 < m) val[best] = pair_value(syms[best], syms[best + 1]);
    }
    out.insert(out.end(), syms.begin(), syms.begin() + m);
    return;
  }
  // Long words: linked list of symbols and a heap of candidate merges, invalidated lazily.
  thread_local std::vector<uint32_t> next, prev;
  thread_local std::vector<HeapEntry> heap;
  constexpr uint32_t kEnd = 0xFFFFFFFFu;
  next.resize(m);
  prev.resize(m);
  heap.clear();
  for (size_t i = 0; i < m; i++) {
    next[i] = i + 1 < m ? static_cast<uint32_t>(i + 1) : kEnd;
    prev[i] = i > 0 ? static_cast<uint32_t>(i - 1) : kEnd;
    if (i + 1 < m) {
      uint64_t v = pair_value(syms[i], syms[i + 1]);
      if (v != kNoMerge) heap.push_back({v, static_cast<uint32_t>(i)});
    }
  }
  auto cmp = std::greater<HeapEntry>();
  std::make_heap(heap.begin(), heap.end(), cmp);
  thread_local std::vector<bool> dead;
  dead.assign(m, false);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), cmp);
    HeapEntry e = heap.back();
    heap.pop_back();
    uint32_t p = e.pos;
    if (dead[p] || next[p] == kEnd) continue;
    uint32_t q = next[p];
    if (pair_value(syms[p], syms[q]) != e.value) continue;
    syms[p] = static_cast<uint32_t>(e.value);
    dead[q] = true;
    next[p] = next[q];
    if (next[q] != kEnd) prev[next[q]] = p;
    if (prev[p] != kEnd) {
      uint64_t v = pair_value(syms[prev[p]], syms[p]);
      if (v != kNoMerge) {
        heap.push_back({v, prev[p]});
        std::push_heap(heap.begin(), heap.end(), cmp);
      }
    }
    if (next[p] != kEnd) {
      uint64_t v = pair_value(syms[p], syms[next[p]]);
      if (v != kNoMerge) {
        heap.push_back({v, p});
        std::push_heap(heap.begin(), heap.end(), cmp);
      }
    }
  }
  for (uint32_t i = 0; i != kEnd; i = next[i]) out.push_back(syms[i]);
}

}  // namespace mindllm
