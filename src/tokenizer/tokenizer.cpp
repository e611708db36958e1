// Encoding pipeline, in Hugging Face's order: added tokens that are not normalized are cut out of
// the raw text; each remaining piece is normalized; added tokens that are normalized are cut out
// of that; the rest is pre-tokenized (Split / Digits / ByteLevel) and each word goes through BPE
// (with a per-thread word cache).
#include "tokenizer/tokenizer.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "core/error.h"
#include "core/file_io.h"
#include "tokenizer/tokenizer_impl.h"

namespace mindllm {

// ---------------------------------------------------------------------------------------------
// Added tokens

void AddedMatcher::add(std::string_view pattern, int32_t token_index) {
  if (pattern.empty()) return;
  uint32_t node = 0;
  for (unsigned char b : pattern) {
    uint64_t key = (static_cast<uint64_t>(node) << 8) | b;
    const uint64_t* child = children_.find(key);
    if (child) {
      node = static_cast<uint32_t>(*child);
    } else {
      nodes_.push_back(Node{});
      uint32_t c = static_cast<uint32_t>(nodes_.size() - 1);
      children_.insert(key, c);
      node = c;
    }
  }
  if (nodes_[node].token < 0) nodes_[node].token = token_index;  // the first of equal patterns wins
  first_[static_cast<unsigned char>(pattern[0])] = true;
}

bool AddedMatcher::find(std::string_view text, size_t from, size_t* begin, size_t* end, int32_t* token_index) const {
  if (empty()) return false;
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  for (size_t i = from; i < n; i++) {
    if (!first_[s[i]]) continue;
    uint32_t node = 0;
    int32_t best = -1;
    size_t best_end = 0;
    for (size_t j = i; j < n; j++) {
      const uint64_t* child = children_.find((static_cast<uint64_t>(node) << 8) | s[j]);
      if (!child) break;
      node = static_cast<uint32_t>(*child);
      if (nodes_[node].token >= 0) {
        best = nodes_[node].token;
        best_end = j + 1;
      }
    }
    if (best >= 0) {
      *begin = i;
      *end = best_end;
      *token_index = best;
      return true;
    }
  }
  return false;
}

namespace {

uint32_t prev_char(const unsigned char* s, size_t end, int* len) {
  size_t k = end - 1;
  while (k > 0 && end - k < 4 && utf8::is_continuation(s[k])) k--;
  uint32_t cp = unicode::decode(s, k, end, len);
  if (static_cast<size_t>(*len) != end - k) {
    *len = 1;
    return unicode::kInvalid;
  }
  return cp;
}

// Splits `text` around the matches of `m`, with Hugging Face's find_matches rules (single_word,
// lstrip, rstrip). Calls on_text(begin, end) for gaps and on_token(id) for tokens.
template <class OnText, class OnToken>
void split_added(const TokenizerImpl& t, const AddedMatcher& m, std::string_view text, OnText&& on_text,
                 OnToken&& on_token) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size(), start_offset = 0, pos = 0, mb, me;
  int32_t idx;
  while (pos < n && m.find(text, pos, &mb, &me, &idx)) {
    const AddedToken& tok = t.added[idx];
    pos = me;
    size_t start = mb, stop = me;
    if (tok.single_word) {
      int len;
      bool word_before = mb > 0 && unicode::is_word(prev_char(s, mb, &len));
      bool word_after = me < n && unicode::is_word(unicode::decode(s, me, n, &len));
      if (word_before || word_after) continue;
    }
    if (tok.lstrip) {
      size_t k = start;
      while (k > 0) {
        int len;
        uint32_t cp = prev_char(s, k, &len);
        if (!unicode::is_space(cp)) break;
        k -= len;
      }
      start = std::max(k, start_offset);
    }
    if (tok.rstrip) {
      while (stop < n) {
        int len;
        uint32_t cp = unicode::decode(s, stop, n, &len);
        if (!unicode::is_space(cp)) break;
        stop += len;
      }
      pos = stop;
    }
    if (start_offset < start) on_text(start_offset, start);
    on_token(tok.id);
    start_offset = stop;
  }
  if (start_offset < n) on_text(start_offset, n);
}

// Per-thread cache of word -> ids, for one tokenizer instance at a time.
struct WordCache {
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_off = 0, key_len = 0, val_off = 0, val_len = 0;
    bool used = false;
  };
  static constexpr size_t kMinSlots = 1 << 10, kMaxSlots = 1 << 18, kMaxWord = 256;
  uint64_t owner = 0;
  std::vector<Slot> slots;
  std::string keys;
  std::vector<TokenId> vals;
  size_t count = 0;

  static size_t home(uint64_t h, size_t mask) { return (h * 0x9E3779B97F4A7C15ull >> 20) & mask; }
  void reset(uint64_t serial) {
    owner = serial;
    slots.assign(kMinSlots, Slot{});
    keys.clear();
    vals.clear();
    count = 0;
  }
  void grow() {
    std::vector<Slot> old(slots.size() * 2);
    old.swap(slots);
    size_t mask = slots.size() - 1;
    for (auto& s : old) {
      if (!s.used) continue;
      size_t i = home(s.hash, mask);
      while (slots[i].used) i = (i + 1) & mask;
      slots[i] = s;
    }
  }
};

thread_local WordCache tl_cache;

void encode_word_cached(const TokenizerImpl& t, std::string_view word, std::vector<TokenId>& out) {
  if (word.size() <= 1 || word.size() > WordCache::kMaxWord) {
    t.model.encode_word(word, out);
    return;
  }
  WordCache& c = tl_cache;
  if (c.owner != t.serial) c.reset(t.serial);
  uint64_t h = StringHash{}(word);
  size_t mask = c.slots.size() - 1, i = WordCache::home(h, mask);
  while (c.slots[i].used) {
    const auto& sl = c.slots[i];
    if (sl.hash == h && sl.key_len == word.size() &&
        std::memcmp(c.keys.data() + sl.key_off, word.data(), word.size()) == 0) {
      out.insert(out.end(), c.vals.begin() + sl.val_off, c.vals.begin() + sl.val_off + sl.val_len);
      return;
    }
    i = (i + 1) & mask;
  }
  size_t before = out.size();
  t.model.encode_word(word, out);
  if (2 * (c.count + 1) > c.slots.size()) {
    if (c.slots.size() >= WordCache::kMaxSlots) {
      c.reset(t.serial);  // full: start over (bounded memory)
      return;
    }
    c.grow();
    mask = c.slots.size() - 1;
    i = WordCache::home(h, mask);
    while (c.slots[i].used) i = (i + 1) & mask;
  }
  auto& sl = c.slots[i];
  sl.used = true;
  sl.hash = h;
  sl.key_off = static_cast<uint32_t>(c.keys.size());
  sl.key_len = static_cast<uint32_t>(word.size());
  sl.val_off = static_cast<uint32_t>(c.vals.size());
  sl.val_len = static_cast<uint32_t>(out.size() - before);
  c.keys.append(word);
  c.vals.insert(c.vals.end(), out.begin() + before, out.end());
  c.count++;
}

struct Encoder {
  const TokenizerImpl& t;
  std::vector<TokenId>& out;
  std::string prefix_buf;

  void pre(size_t k, std::string_view piece) {
    pre_tokenize(t.pre, k, piece, prefix_buf, [&](std::string_view w) { encode_word_cached(t, w, out); });
  }

  void normalized_piece(std::string_view text) {
    if (t.normalized_matcher.empty()) {
      pre(0, text);
      return;
    }
    split_added(
        t, t.normalized_matcher, text, [&](size_t b, size_t e) { pre(0, text.substr(b, e - b)); },
        [&](TokenId id) { out.push_back(id); });
  }

  void raw_piece(std::string_view text) {
    if (t.normalizers.empty()) {
      normalized_piece(text);
      return;
    }
    std::string norm;
    t.normalize(text, norm);
    normalized_piece(norm);
  }

  void run(std::string_view text) {
    if (t.raw_matcher.empty()) {
      raw_piece(text);
      return;
    }
    split_added(
        t, t.raw_matcher, text, [&](size_t b, size_t e) { raw_piece(text.substr(b, e - b)); },
        [&](TokenId id) { out.push_back(id); });
  }
};

uint64_t fnv(uint64_t h, std::string_view s) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return (h ^ 0xff) * 0x100000001b3ull;  // terminator so ("ab","c") != ("a","bc")
}

std::atomic<uint64_t> g_serial{1};

// An id of the BPE vocabulary (not an added token).
bool in_vocabulary(const BpeModel& m, TokenId id) {
  return id >= 0 && static_cast<size_t>(id) < m.size() && m.present[id];
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// TokenizerImpl

void TokenizerImpl::normalize(std::string_view in, std::string& out) const {
  std::string tmp;
  std::string_view cur = in;
  bool first = true;
  for (NormStep st : normalizers) {
    std::string& dst = first ? out : tmp;
    switch (st) {
      case NormStep::lowercase: unicode::lowercase(cur, dst); break;
      case NormStep::nfc: unicode::normalize(cur, unicode::NormForm::nfc, dst); break;
      case NormStep::nfkc: unicode::normalize(cur, unicode::NormForm::nfkc, dst); break;
      case NormStep::nfd: unicode::normalize(cur, unicode::NormForm::nfd, dst); break;
      case NormStep::nfkd: unicode::normalize(cur, unicode::NormForm::nfkd, dst); break;
    }
    if (!first) out.swap(tmp);
    cur = out;
    first = false;
  }
  if (first) out.assign(in);
}

void TokenizerImpl::finish(const std::string& where) {
  model.finish();
  bool has_byte_level = false;
  for (auto& st : pre) has_byte_level |= st.kind == PreStep::byte_level;
  if (!has_byte_level)
    bad_input(where + ": pre_tokenizer has no ByteLevel step; only byte-level BPE tokenizers are supported");
  added_by_id.clear();
  added_by_content.clear();
  raw_matcher = AddedMatcher();
  normalized_matcher = AddedMatcher();
  // Hugging Face matches special tokens first, then the others, each in file order; with
  // leftmost-longest matching, order only decides between identical patterns.
  std::vector<size_t> order;
  for (size_t i = 0; i < added.size(); i++)
    if (added[i].special) order.push_back(i);
  for (size_t i = 0; i < added.size(); i++)
    if (!added[i].special) order.push_back(i);
  for (size_t i : order) {
    const AddedToken& a = added[i];
    added_by_id[a.id] = i;
    added_by_content.emplace(a.content, i);
    if (a.normalized) {
      std::string norm;
      normalize(a.content, norm);
      normalized_matcher.add(norm, static_cast<int32_t>(i));
    } else {
      raw_matcher.add(a.content, static_cast<int32_t>(i));
    }
    if (a.content.find('\n') != std::string::npos || a.content.find('\r') != std::string::npos || a.lstrip)
      can_cut_at_newlines = false;
  }
  for (auto& st : pre)
    if ((st.kind == PreStep::byte_level && st.add_prefix_space) || st.regex) can_cut_at_newlines = false;
  vocab_size = model.size();
  for (auto& a : added) vocab_size = std::max<size_t>(vocab_size, a.id + 1);
  // eos: special_tokens_map.json's, else the usual names.
  eos.reset();
  auto lookup = [&](const std::string& s) -> std::optional<TokenId> {
    auto it = added_by_content.find(s);
    if (it != added_by_content.end()) return added[it->second].id;
    auto jt = model.token_to_id.find(s);
    if (jt != model.token_to_id.end()) return jt->second;
    return std::nullopt;
  };
  if (!eos_hint.empty()) eos = lookup(eos_hint);
  for (const char* name : {"<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "<|im_end|>", "<|eot_id|>", "[SEP]"}) {
    if (eos) break;
    eos = lookup(name);
  }
  // Content hash: tokens by id, merges by rank, added tokens with their flags.
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t id = 0; id < model.size(); id++) {
    if (!model.present[id]) continue;
    h = fnv(h, std::to_string(id));
    h = fnv(h, model.tokens[id]);
  }
  h = fnv(h, "#merges");
  for (auto& [a, b] : model.merges) h = fnv(h, std::to_string(a) + " " + std::to_string(b));
  h = fnv(h, "#added");
  for (auto& a : added) {
    h = fnv(h, std::to_string(a.id));
    h = fnv(h, a.content);
    h = fnv(h, std::string{char('0' + a.single_word), char('0' + a.lstrip), char('0' + a.rstrip),
                           char('0' + a.normalized), char('0' + a.special)});
  }
  content_hash = h;
  serial = g_serial.fetch_add(1);
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

Tokenizer Tokenizer::load(const std::string& path) {
  if (is_directory(path)) {
    std::string dir = path.empty() || path.back() == '/' ? path : path + "/";
    if (path_exists(dir + "tokenizer.json"))
      return Tokenizer(parse_tokenizer_json(read_file(dir + "tokenizer.json"), dir + "tokenizer.json"));
    if (path_exists(dir + "vocab.json") && path_exists(dir + "merges.txt")) return Tokenizer(load_gpt2_files(dir));
    bad_input(path + ": directory has neither tokenizer.json nor vocab.json + merges.txt");
  }
  if (!path_exists(path)) bad_input(path + ": no such tokenizer file or directory");
  return Tokenizer(parse_tokenizer_json(read_file(path), path));
}

Tokenizer Tokenizer::from_json(std::string_view json_text, const std::string& where) {
  return Tokenizer(parse_tokenizer_json(json_text, where));
}

void Tokenizer::encode_append(std::string_view text, std::vector<TokenId>& out) const {
  Encoder e{*impl_, out, {}};
  e.run(text);
}

std::vector<TokenId> Tokenizer::encode(std::string_view text) const {
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 4);
  encode_append(text, out);
  return out;
}

std::vector<std::vector<TokenId>> Tokenizer::encode_batch(const std::vector<std::string>& texts, int threads) const {
  std::vector<std::vector<TokenId>> out(texts.size());
  if (threads <= 0) threads = omp_get_max_threads();
  int64_t n = static_cast<int64_t>(texts.size());
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
  for (int64_t i = 0; i < n; i++) out[i] = encode(texts[i]);
  return out;
}

std::vector<TokenId> Tokenizer::encode_parallel(std::string_view text, int threads) const {
  if (threads <= 0) threads = omp_get_max_threads();
  const TokenizerImpl& t = *impl_;
  if (threads == 1 || !t.can_cut_at_newlines || text.size() < (1u << 20)) return encode(text);
  // Cut points: just after a '\n' that is followed by a letter. No known split pattern has a piece that
  // holds "\n" followed by a letter, no added token holds a newline, and a letter is a
  // normalization boundary (checked) and lowercases on its own.
  size_t parts = static_cast<size_t>(threads) * 8;
  std::vector<size_t> cuts{0};
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t p = 1; p < parts; p++) {
    size_t target = std::max(cuts.back() + 1, text.size() * p / parts);
    const void* nl = target < text.size() ? std::memchr(s + target, '\n', text.size() - target) : nullptr;
    while (nl) {
      size_t k = static_cast<const unsigned char*>(nl) - s + 1;
      if (k >= text.size()) break;
      int len;
      uint32_t cp = unicode::decode(s, k, text.size(), &len);
      uint8_t f = unicode::flags(cp);
      bool letter = cp != unicode::kInvalid && (f & unicode_tables::kFlagLetter);
      bool boundary = t.normalizers.empty() ||
                      ((f & unicode_tables::kFlagNfcSafe) && (f & unicode_tables::kFlagNfkcSafe) && cp < 0x80);
      if (letter && boundary) {
        cuts.push_back(k);
        break;
      }
      nl = std::memchr(s + k, '\n', text.size() - k);
    }
    if (!nl) break;
  }
  cuts.push_back(text.size());
  size_t np = cuts.size() - 1;
  std::vector<std::vector<TokenId>> pieces(np);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t i = 0; i < static_cast<int64_t>(np); i++)
    pieces[i] = encode(text.substr(cuts[i], cuts[i + 1] - cuts[i]));
  std::vector<TokenId> out;
  size_t total = 0;
  for (auto& p : pieces) total += p.size();
  out.reserve(total);
  for (auto& p : pieces) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::string_view Tokenizer::token_bytes(TokenId id) const {
  const TokenizerImpl& t = *impl_;
  auto it = t.added_by_id.find(id);
  if (it != t.added_by_id.end()) return t.added[it->second].content;
  if (in_vocabulary(t.model, id)) return t.model.token_bytes[id];
  return {};
}

std::string Tokenizer::decode(std::span<const TokenId> ids) const {
  const TokenizerImpl& t = *impl_;
  std::string out;
  out.reserve(ids.size() * 4);
  for (TokenId id : ids) {
    if (!t.added_by_id.empty()) {
      auto it = t.added_by_id.find(id);
      if (it != t.added_by_id.end()) {
        out += t.added[it->second].content;
        continue;
      }
    }
    if (!in_vocabulary(t.model, id))
      bad_input("token id " + std::to_string(id) + " is not in the vocabulary (size " + std::to_string(t.vocab_size) +
                ")");
    out += t.model.token_bytes[id];
  }
  return out;
}

size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<TokenId> Tokenizer::token_to_id(std::string_view token) const {
  const TokenizerImpl& t = *impl_;
  auto it = t.added_by_content.find(std::string(token));
  if (it != t.added_by_content.end()) return t.added[it->second].id;
  auto jt = t.model.token_to_id.find(token);
  if (jt != t.model.token_to_id.end()) return jt->second;
  return std::nullopt;
}

std::optional<std::string> Tokenizer::id_to_token(TokenId id) const {
  const TokenizerImpl& t = *impl_;
  auto it = t.added_by_id.find(id);
  if (it != t.added_by_id.end()) return t.added[it->second].content;
  if (in_vocabulary(t.model, id)) return t.model.tokens[id];
  return std::nullopt;
}

std::optional<TokenId> Tokenizer::eos_id() const { return impl_->eos; }
uint64_t Tokenizer::hash() const { return impl_->content_hash; }
size_t Tokenizer::num_merges() const { return impl_->model.merges.size(); }

std::vector<std::pair<std::string, std::string>> Tokenizer::merges() const {
  std::vector<std::pair<std::string, std::string>> out;
  const BpeModel& m = impl_->model;
  out.reserve(m.merges.size());
  for (auto& [a, b] : m.merges) out.emplace_back(m.tokens[a], m.tokens[b]);
  return out;
}

bool Tokenizer::is_special(TokenId id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

bool Tokenizer::is_added(TokenId id) const { return impl_->added_by_id.count(id) > 0; }

std::optional<SplitPattern> Tokenizer::split_pattern() const {
  for (const PreStep& st : impl_->pre) {
    if (st.kind == PreStep::split) return st.pattern;
    if (st.kind == PreStep::byte_level && st.use_regex) return SplitPattern::gpt2;
  }
  return std::nullopt;
}

std::string Tokenizer::to_json() const { return write_tokenizer_json(*impl_); }

void Tokenizer::save(const std::string& path) const { write_file_atomic(path, to_json()); }

}  // namespace mindllm
