#include "tokenizer/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <queue>
#include <unordered_map>

#include "core/error.h"
#include "core/progress.h"
#include "data/reader.h"
#include "data/stream.h"
#include "tokenizer/tokenizer_impl.h"

namespace mindllm {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

using WordMap = std::unordered_map<std::string, uint64_t, StringHash, std::equal_to<>>;

// Normalizer + pre-tokenizer configuration of the tokenizer being trained.
std::shared_ptr<TokenizerImpl> make_config(const BpeTrainOptions& o) {
  auto t = std::make_shared<TokenizerImpl>();
  if (o.normalizer == "nfc") t->normalizers.push_back(NormStep::nfc);
  else if (o.normalizer == "nfkc") t->normalizers.push_back(NormStep::nfkc);
  else if (!o.normalizer.empty() && o.normalizer != "none")
    bad_input("--normalizer: expected none, nfc or nfkc, got " + o.normalizer);
  t->normalizer_json = normalizer_to_json(t->normalizers);
  nlohmann::json bl = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  PreStep byte_level;
  byte_level.kind = PreStep::byte_level;
  byte_level.add_prefix_space = false;
  if (o.pattern == SplitPattern::gpt2) {
    byte_level.use_regex = true;
    t->pre = {byte_level};
    t->pre_tokenizer_json = bl;
  } else {
    PreStep split;
    split.kind = PreStep::split;
    split.pattern = o.pattern;
    byte_level.use_regex = false;
    t->pre = {split, byte_level};
    nlohmann::json bl2 = bl;
    bl2["use_regex"] = false;
    t->pre_tokenizer_json = {{"type", "Sequence"},
                             {"pretokenizers",
                              {{{"type", "Split"},
                                {"pattern", {{"Regex", split_pattern_regex(o.pattern)}}},
                                {"behavior", "Isolated"},
                                {"invert", false}},
                               bl2}}};
  }
  t->post_processor_json = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  t->decoder_json = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  return t;
}

// Per-thread word counting of sequences.
struct Counter {
  const TokenizerImpl& cfg;
  WordMap words;
  std::string norm, prefix;
  uint64_t total = 0;
  uint64_t pruned = 0;
  size_t limit;

  void add_sequence(std::string_view seq) {
    std::string_view text = seq;
    if (!cfg.normalizers.empty()) {
      cfg.normalize(seq, norm);
      text = norm;
    }
    pre_tokenize(cfg.pre, 0, text, prefix, [&](std::string_view w) {
      auto it = words.find(w);
      if (it != words.end()) it->second++;
      else words.emplace(std::string(w), 1);
      total++;
    });
    if (words.size() > limit) {
      for (auto it = words.begin(); it != words.end();) {
        if (it->second < 2) {
          pruned++;
          it = words.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
  // Lines of a text chunk, each with its '\n' (as Hugging Face's trainer reads files).
  void add_lines(std::string_view chunk) {
    size_t pos = 0;
    while (pos < chunk.size()) {
      size_t e = chunk.find('\n', pos);
      e = e == std::string_view::npos ? chunk.size() : e + 1;
      add_sequence(chunk.substr(pos, e - pos));
      pos = e;
    }
  }
};

struct Chunk {
  std::string text;
  std::string file;
  uint64_t first_line = 0;
  bool jsonl = false;
};

// Counts the words of all inputs on `threads` threads; returns one merged map.
WordMap count_words(const BpeTrainOptions& o, const TokenizerImpl& cfg, int threads, BpeTrainStats& st,
                    Progress& prog) {
  std::vector<Counter> counters;
  for (int i = 0; i < threads; i++)
    counters.push_back(Counter{cfg, {}, {}, {}, 0, 0, std::max<size_t>(o.max_words / threads, 1000)});
  const size_t kChunk = 1 << 20;
  auto t0 = Clock::now();
  std::vector<Chunk> batch;
  std::string error;
  auto run_batch = [&]() {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t i = 0; i < static_cast<int64_t>(batch.size()); i++) {
      Counter& c = counters[omp_get_thread_num()];
      const Chunk& ch = batch[i];
      try {
        if (!ch.jsonl) {
          c.add_lines(ch.text);
          continue;
        }
        size_t pos = 0;
        uint64_t line = ch.first_line;
        std::string text;
        while (pos < ch.text.size()) {
          size_t e = ch.text.find('\n', pos);
          if (e == std::string::npos) e = ch.text.size();
          std::string_view l(ch.text.data() + pos, e - pos);
          pos = e + 1;
          line++;
          if (l.find_first_not_of(" \t\r") == std::string_view::npos) continue;
          // The text field as the data pipeline reads it ("a.b" for nested objects).
          std::string why;
          int rc = data::parse_jsonl_text(l, o.field, &text, &why);
          if (rc == 0) bad_input(ch.file + ":" + std::to_string(line) + ": " + why);
          if (rc < 0) bad_input(ch.file + ":" + std::to_string(line) + ": no string field \"" + o.field + "\"");
          c.add_sequence(text);
        }
      } catch (const std::exception& e) {
#pragma omp critical
        if (error.empty()) error = e.what();
      }
    }
    if (!error.empty()) bad_input(error);
    uint64_t words = 0;
    for (auto& c : counters) words += c.total;
    double s = seconds_since(t0);
    prog.note("counting words: " + std::to_string(st.bytes >> 20) + " MiB, " + std::to_string(words) + " words, " +
              std::to_string(static_cast<int>(st.bytes / 1048576.0 / std::max(s, 1e-3))) + " MiB/s");
    batch.clear();
  };
  for (const auto& path : o.inputs) {
    // Plain, gzip or zstd (by magic bytes), as every reader of the data pipeline.
    std::unique_ptr<data::ByteSource> in;
    try {
      in = std::make_unique<data::ByteSource>(path);
    } catch (const data::StreamError& e) { bad_input(e.what()); }
    bool jsonl = data::is_jsonl_name(path);
    std::string carry;
    uint64_t lines = 0;
    while (true) {
      std::string buf = std::move(carry);
      size_t old = buf.size();
      buf.resize(old + kChunk);
      size_t got = 0;
      try {
        while (got < kChunk) {
          size_t r = in->read(buf.data() + old + got, kChunk - got);
          if (r == 0) break;
          got += r;
        }
      } catch (const data::StreamError& e) {
        bad_input(e.what());  // a truncated or corrupt compressed file
      }
      buf.resize(old + got);
      bool eof = got < kChunk;
      carry.clear();
      if (!eof) {
        size_t nl = buf.rfind('\n');
        if (nl != std::string::npos) {
          carry.assign(buf, nl + 1, std::string::npos);
          buf.resize(nl + 1);
        } else {
          carry.swap(buf);  // a line longer than the chunk: keep reading
          continue;
        }
      }
      st.bytes += buf.size();
      uint64_t nlines = std::count(buf.begin(), buf.end(), '\n');
      if (!buf.empty()) batch.push_back(Chunk{std::move(buf), path, lines, jsonl});
      lines += nlines;
      if (batch.size() >= static_cast<size_t>(threads) * 4) run_batch();
      if (eof) break;
    }
    st.sequences += lines;
  }
  run_batch();
  // Merge the per-thread maps into the largest one.
  size_t big = 0;
  for (size_t i = 1; i < counters.size(); i++)
    if (counters[i].words.size() > counters[big].words.size()) big = i;
  WordMap all = std::move(counters[big].words);
  for (size_t i = 0; i < counters.size(); i++) {
    st.words += counters[i].total;
    st.pruned_words += counters[i].pruned;
    if (i == big) continue;
    for (auto& [w, n] : counters[i].words) all[w] += n;
    WordMap().swap(counters[i].words);
  }
  st.unique_words = all.size();
  st.count_seconds = seconds_since(t0);
  prog.note("counted " + std::to_string(st.words) + " words (" + std::to_string(all.size()) + " distinct) in " +
                std::to_string(st.count_seconds).substr(0, 5) + " s",
            true);
  return all;
}

// Open-addressing map pair -> index into the per-pair arrays.
class PairIndex {
 public:
  explicit PairIndex(size_t cap_hint) {
    size_t cap = 1024;
    while (cap < cap_hint * 2) cap <<= 1;
    keys_.assign(cap, kEmpty);
    vals_.assign(cap, 0);
    mask_ = cap - 1;
  }
  // Index of the pair, creating it (with `next_index`) when absent.
  uint32_t get_or_add(uint64_t key, uint32_t next_index, bool* added) {
    if (2 * (size_ + 1) > keys_.size()) grow();
    size_t i = slot(key);
    *added = keys_[i] == kEmpty;
    if (*added) {
      keys_[i] = key;
      vals_[i] = next_index;
      size_++;
    }
    return vals_[i];
  }
  int64_t find(uint64_t key) const {
    size_t i = slot(key);
    return keys_[i] == kEmpty ? -1 : vals_[i];
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  size_t slot(uint64_t key) const {
    size_t i = (key * 0x9E3779B97F4A7C15ull >> 17) & mask_;
    while (keys_[i] != kEmpty && keys_[i] != key) i = (i + 1) & mask_;
    return i;
  }
  void grow() {
    std::vector<uint64_t> k;
    std::vector<uint32_t> v;
    k.swap(keys_);
    v.swap(vals_);
    keys_.assign(k.size() * 2, kEmpty);
    vals_.assign(k.size() * 2, 0);
    mask_ = keys_.size() - 1;
    for (size_t i = 0; i < k.size(); i++)
      if (k[i] != kEmpty) {
        size_t j = slot(k[i]);
        keys_[j] = k[i];
        vals_[j] = v[i];
      }
  }
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> vals_;
  size_t mask_ = 0, size_ = 0;
};

struct QueueEntry {
  int64_t count;
  uint64_t pair;  // a << 32 | b
  // Max count first; on ties the smallest pair (Hugging Face's Merge ordering).
  bool operator<(const QueueEntry& o) const { return count != o.count ? count < o.count : pair > o.pair; }
};

Tokenizer train_from_words(WordMap& words, const BpeTrainOptions& o, std::shared_ptr<TokenizerImpl> cfg,
                           BpeTrainStats& st, Progress& prog) {
  auto t0 = Clock::now();
  // Initial vocabulary: special tokens, then the 256 bytes ordered by their byte-level character.
  std::vector<std::string> vocab;  // raw bytes by id
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> ids;
  std::vector<bool> is_special;
  for (auto& s : o.special) {
    if (ids.count(s)) continue;
    ids.emplace(s, static_cast<uint32_t>(vocab.size()));
    vocab.push_back(s);
    is_special.push_back(true);
  }
  std::vector<int> bytes(256);
  for (int b = 0; b < 256; b++) bytes[b] = b;
  std::sort(bytes.begin(), bytes.end(), [](int x, int y) { return byte_to_char(x) < byte_to_char(y); });
  uint32_t byte_id[256];
  for (int b : bytes) {
    std::string s(1, static_cast<char>(b));
    auto it = ids.find(s);
    if (it != ids.end()) {
      byte_id[b] = it->second;  // a one-byte special token
      continue;
    }
    byte_id[b] = static_cast<uint32_t>(vocab.size());
    ids.emplace(s, byte_id[b]);
    vocab.push_back(s);
    is_special.push_back(false);
  }
  // Words as symbol sequences in one arena.
  size_t nw = words.size();
  std::vector<uint32_t> sym;
  std::vector<uint64_t> off(nw), cnt(nw);
  std::vector<uint32_t> len(nw);
  {
    size_t total = 0;
    for (auto& [w, c] : words) total += w.size();
    sym.reserve(total);
    size_t i = 0;
    for (auto& [w, c] : words) {
      off[i] = sym.size();
      len[i] = static_cast<uint32_t>(w.size());
      cnt[i] = c;
      for (unsigned char b : w) sym.push_back(byte_id[b]);
      i++;
    }
    WordMap().swap(words);
  }
  // Pair counts and, per pair, the words that hold it (may hold stale entries).
  PairIndex index(1 << 20);
  std::vector<int64_t> pcount;
  std::vector<std::vector<uint32_t>> pwords;
  std::vector<uint64_t> pkey;
  auto pair_of = [](uint32_t a, uint32_t b) { return (static_cast<uint64_t>(a) << 32) | b; };
  auto touch = [&](uint64_t key, int64_t delta, uint32_t word, bool add_word) -> uint32_t {
    bool added;
    uint32_t idx = index.get_or_add(key, static_cast<uint32_t>(pcount.size()), &added);
    if (added) {
      pcount.push_back(0);
      pwords.emplace_back();
      pkey.push_back(key);
    }
    pcount[idx] += delta;
    if (add_word && (pwords[idx].empty() || pwords[idx].back() != word)) pwords[idx].push_back(word);
    return idx;
  };
  for (uint32_t w = 0; w < nw; w++) {
    const uint32_t* s = sym.data() + off[w];
    for (uint32_t i = 0; i + 1 < len[w]; i++) touch(pair_of(s[i], s[i + 1]), static_cast<int64_t>(cnt[w]), w, true);
  }
  struct Local {
    std::unordered_map<uint64_t, int64_t> delta;
    std::vector<std::pair<uint64_t, uint32_t>> adds;
  };
  int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  std::vector<Local> locals(threads);
  std::priority_queue<QueueEntry> queue;
  for (size_t i = 0; i < pcount.size(); i++)
    if (pcount[i] > 0) queue.push({pcount[i], pkey[i]});

  std::vector<std::pair<uint32_t, uint32_t>> merges;
  std::vector<uint32_t> stamp(nw, 0);
  std::vector<uint64_t> new_pairs;
  uint32_t iter = 0;
  size_t target = std::max(o.vocab_size, vocab.size());
  size_t todo = target - vocab.size();
  while (vocab.size() < target && !queue.empty()) {
    QueueEntry top = queue.top();
    queue.pop();
    int64_t idx = index.find(top.pair);
    int64_t cur = pcount[idx];
    if (top.count != cur) {
      top.count = cur;
      queue.push(top);
      continue;
    }
    if (top.count < 1 || static_cast<uint64_t>(top.count) < o.min_frequency) break;
    uint32_t a = static_cast<uint32_t>(top.pair >> 32), b = static_cast<uint32_t>(top.pair);
    std::string joined = vocab[a] + vocab[b];
    uint32_t c;
    auto it = ids.find(joined);
    if (it != ids.end()) {
      c = it->second;
    } else {
      c = static_cast<uint32_t>(vocab.size());
      ids.emplace(joined, c);
      vocab.push_back(std::move(joined));
      is_special.push_back(false);
    }
    merges.emplace_back(a, b);
    iter++;
    new_pairs.clear();
    std::vector<uint32_t> where = std::move(pwords[idx]);
    pwords[idx] = {};
    size_t wn = 0;
    for (uint32_t w : where) {
      if (stamp[w] == iter) continue;
      stamp[w] = iter;
      where[wn++] = w;
    }
    where.resize(wn);
    // Rewrites word w in place, reporting each pair count change to on_delta(pair, delta, word).
    auto rewrite = [&](uint32_t w, auto&& on_delta) {
      uint32_t* s = sym.data() + off[w];
      uint32_t n = len[w], j = 0;
      int64_t k = static_cast<int64_t>(cnt[w]);
      for (uint32_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
          if (j > 0) {
            on_delta(pair_of(s[j - 1], a), -k, w);
            on_delta(pair_of(s[j - 1], c), k, w);
          }
          if (i + 2 < n) {
            on_delta(pair_of(b, s[i + 2]), -k, w);
            on_delta(pair_of(c, s[i + 2]), k, w);
          }
          s[j++] = c;
          i += 2;
        } else {
          s[j++] = s[i++];
        }
      }
      len[w] = j;
    };
    if (threads > 1 && wn >= 4096) {
      // Many words (the early merges): rewrite in parallel, each thread summing its count changes
      // per pair; then apply the sums. Same counts as the sequential path, so the same merges.
#pragma omp parallel num_threads(threads)
      {
        Local& L = locals[omp_get_thread_num()];
        L.delta.clear();
        L.adds.clear();
#pragma omp for schedule(static)
        for (int64_t i = 0; i < static_cast<int64_t>(wn); i++) {
          rewrite(where[i], [&](uint64_t p, int64_t d, uint32_t w) {
            L.delta[p] += d;
            if (d > 0) L.adds.emplace_back(p, w);
          });
        }
      }
      for (auto& L : locals) {
        for (auto& [p, d] : L.delta) touch(p, d, 0, false);
        for (auto& [p, w] : L.adds) {
          new_pairs.push_back(p);
          touch(p, 0, w, true);
        }
      }
    } else {
      for (uint32_t w : where)
        rewrite(w, [&](uint64_t p, int64_t d, uint32_t word) {
          if (d > 0) new_pairs.push_back(p);
          touch(p, d, word, d > 0);
        });
    }
    pcount[idx] = 0;
    std::sort(new_pairs.begin(), new_pairs.end());
    new_pairs.erase(std::unique(new_pairs.begin(), new_pairs.end()), new_pairs.end());
    for (uint64_t p : new_pairs) {
      int64_t i = index.find(p);
      if (pcount[i] > 0) queue.push({pcount[i], p});
    }
    if (o.progress && (iter & 63) == 0) {
      double s = seconds_since(t0);
      size_t done = merges.size();
      double eta = done ? s / done * (todo > done ? todo - done : 0) : 0;
      prog.note("merges " + std::to_string(done) + "/" + std::to_string(todo) + " (" +
                std::to_string(static_cast<int>(done / std::max(s, 1e-3))) + "/s, ETA " +
                std::to_string(static_cast<int>(eta)) + " s)");
    }
  }
  st.merge_seconds = seconds_since(t0);
  prog.note("" + std::to_string(merges.size()) + " merges, vocabulary " + std::to_string(vocab.size()) + " in " +
                std::to_string(st.merge_seconds).substr(0, 5) + " s",
            true);
  prog.end();
  // Build the tokenizer.
  TokenizerImpl& t = *cfg;
  for (size_t id = 0; id < vocab.size(); id++)
    t.model.add_token(is_special[id] ? vocab[id] : byte_level_encode(vocab[id]), static_cast<TokenId>(id), "trainer");
  t.model.merges.assign(merges.begin(), merges.end());
  t.model.merge_map.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); r++)
    t.model.merge_map.insert(
        pair_of(merges[r].first, merges[r].second),
        (static_cast<uint64_t>(r) << 32) | ids.at(vocab[merges[r].first] + vocab[merges[r].second]));
  for (size_t id = 0; id < vocab.size(); id++) {
    if (!is_special[id]) continue;
    AddedToken a;
    a.id = static_cast<TokenId>(id);
    a.content = vocab[id];
    a.special = true;
    a.normalized = false;
    t.added.push_back(a);
  }
  t.finish("trainer");
  return Tokenizer(cfg);
}

void check_specials(const BpeTrainOptions& o) {
  for (auto& s : o.special) {
    if (s.empty()) bad_input("--special: empty token");
    if (!utf8::valid(s)) bad_input("--special: token is not valid UTF-8");
  }
  if (o.vocab_size < 256 + o.special.size())
    bad_input("--vocab-size: " + std::to_string(o.vocab_size) + " is smaller than 256 bytes + " +
              std::to_string(o.special.size()) + " special tokens");
}

}  // namespace

Tokenizer train_bpe(const BpeTrainOptions& o, BpeTrainStats* stats) {
  check_specials(o);
  if (o.inputs.empty()) bad_input("--input: no input files");
  BpeTrainStats st;
  Progress prog("tokenizer train", 0, "", o.progress);
  int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  auto cfg = make_config(o);
  WordMap words = count_words(o, *cfg, threads, st, prog);
  Tokenizer t = train_from_words(words, o, cfg, st, prog);
  if (stats) *stats = st;
  return t;
}

Tokenizer train_bpe_from_texts(const std::vector<std::string>& texts, const BpeTrainOptions& o, BpeTrainStats* stats) {
  check_specials(o);
  BpeTrainStats st;
  Progress prog("tokenizer train", 0, "", o.progress);
  auto cfg = make_config(o);
  Counter c{*cfg, {}, {}, {}, 0, 0, o.max_words};
  for (auto& s : texts) {
    c.add_sequence(s);
    st.bytes += s.size();
  }
  st.sequences = texts.size();
  st.words = c.total;
  st.unique_words = c.words.size();
  Tokenizer t = train_from_words(c.words, o, cfg, st, prog);
  if (stats) *stats = st;
  return t;
}

}  // namespace mindllm
