// Data pipeline on real text from ../shared/data/corpus: language-id accuracy on a labelled set
// (mixed-language documents included), filters keeping real text and removing planted junk, and
// near-duplicate precision/recall on a synthetic set. The measured numbers are printed.
#include <gtest/gtest.h>

#include <cstdio>

#include "core/file_io.h"
#include "core/rng.h"
#include "data/clean.h"
#include "data/dedup.h"
#include "data/filters.h"
#include "data/langid.h"
#include "data/reader.h"
#include "data/char_class.h"
#include "test_data_support.h"

using namespace mindllm::data;
using namespace data_test;

namespace {

std::string corpus(const std::string& rel) { return mindllm::read_file(corpus_dir() + "/" + rel); }

std::vector<std::string> c4_texts(size_t n) {
  DocumentReader r({corpus_dir() + "/en/c4_demo.jsonl"}, ReaderConfig{});
  std::vector<std::string> out;
  RawDoc d;
  while (out.size() < n && r.next(d)) out.push_back(d.text);
  return out;
}

std::vector<std::string> novel_chunks(size_t bytes, size_t per_novel) {
  std::vector<std::string> out;
  for (const char* n : {"zh/三国演义.txt", "zh/水浒传.txt", "zh/红楼梦.txt", "zh/西游记.txt"}) {
    std::string t = corpus(n);
    auto c = chunks(t.substr(std::min<size_t>(t.size(), 20000)), bytes, per_novel * 8);
    for (size_t i = 0; i < c.size() && i / 8 < per_novel; i += 8) out.push_back(c[i]);  // spread over the book
  }
  return out;
}

size_t count_letters(const std::string& s, bool han) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t len = mindllm::utf8::decode(s, i, &cp);
    if (!len) {
      i++;
      continue;
    }
    n += han ? is_han(cp) : (is_ascii_alpha(cp) || is_latin_ext(cp));
    i += len;
  }
  return n;
}

// Letters shifted by 3 (a Caesar cipher): Latin-script text that is not English.
std::string shift_letters(const std::string& s) {
  std::string o = s;
  for (auto& c : o) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>('a' + (c - 'a' + 3) % 26);
    if (c >= 'A' && c <= 'Z') c = static_cast<char>('A' + (c - 'A' + 3) % 26);
  }
  return o;
}

}  // namespace

TEST(DataCorpus, LanguageIdAccuracy) {
  if (!have_corpus()) GTEST_SKIP() << "no ../shared/data/corpus";
  struct Item {
    std::string text;
    Lang label;
    std::string kind;
  };
  std::vector<Item> set;
  for (auto& t : novel_chunks(600, 40)) set.push_back({t, Lang::zh, "zh-novel"});
  auto law = chunks(corpus("law-zh/民法典/合同编.md"), 600, 60);
  for (size_t i = 0; i < law.size(); i += 2) set.push_back({law[i], Lang::zh, "zh-law"});
  std::string wiki = corpus("en/wiki_demo.txt");
  auto wl = chunks(wiki, 600, 80);
  for (auto& t : wl) set.push_back({t, Lang::en, "en-wiki"});
  for (auto& t : c4_texts(120)) set.push_back({t, Lang::en, "en-c4"});
  auto sh = chunks(corpus("en/tinyshakespeare.txt"), 600, 300);
  for (size_t i = 0; i < sh.size(); i += 5) set.push_back({sh[i], Lang::en, "en-shakespeare"});
  // Mixed documents: Chinese text with English sentences inside (and the other way round); the
  // label is the language of most letters, built with a clear majority (>= 2:1).
  mindllm::Rng rng(3);
  auto zh = novel_chunks(300, 30), en = chunks(wiki.substr(200000), 300, 120);
  for (size_t i = 0; i < 100; i++) {
    const std::string& z = zh[i % zh.size()];
    const std::string& e = en[i % en.size()];
    std::string doc;
    size_t zl = count_letters(z, true), el = count_letters(e, false);
    if (i % 2 == 0) {  // mostly Chinese: all of z, a short English sentence
      // English letters between 10% and 45% of the Chinese ones.
      size_t want = zl * (10 + rng.below(36)) / 100;
      std::string e_short = e.substr(0, e.find(' ', std::min<size_t>(e.size(), want)));
      size_t mid = z.size() / 2;
      while (mid > 0 && (static_cast<unsigned char>(z[mid]) & 0xC0) == 0x80) mid--;
      doc = z.substr(0, mid) + " " + e_short + " " + z.substr(mid);
    } else {  // mostly English: one Chinese phrase per ~4 English letters... keep Han < letters / 2
      size_t keep = 0, han = 0;
      std::string zpart;
      size_t want = el * (10 + rng.below(36)) / 100;
      for (size_t k = 0; k < z.size() && han < want;) {
        char32_t cp;
        size_t len = mindllm::utf8::decode(z, k, &cp);
        if (!len) break;
        zpart.append(z, k, len);
        han += is_han(cp);
        k += len;
        keep = k;
      }
      (void)keep;
      doc = e.substr(0, e.size() / 2) + " " + zpart + " " + e.substr(e.size() / 2);
    }
    if (!mindllm::utf8::valid(doc)) continue;
    size_t h = count_letters(doc, true), l = count_letters(doc, false);
    set.push_back({doc, h > l ? Lang::zh : Lang::en, "mixed"});
  }
  // Other: Latin-script non-English text, Japanese-like Han + kana, number tables.
  for (size_t i = 0; i < 40; i++) set.push_back({shift_letters(wl[i]), Lang::other, "other-latin"});
  const char* kana[] = {"の", "は", "を", "に", "で", "た", "ます", "です"};
  for (size_t i = 0; i < 30; i++) {
    std::string z = zh[i % zh.size()], doc;
    size_t k = 0, n = 0;
    while (k < z.size()) {
      char32_t cp;
      size_t len = mindllm::utf8::decode(z, k, &cp);
      if (!len) break;
      doc.append(z, k, len);
      if (is_han(cp) && ++n % 3 == 0) doc += kana[rng.below(8)];
      k += len;
    }
    set.push_back({doc, Lang::other, "other-kana"});
  }
  for (size_t i = 0; i < 20; i++) {
    std::string doc;
    for (int r = 0; r < 20; r++)
      doc += std::to_string(rng.below(100000)) + " | " + std::to_string(rng.below(1000)) + ".5 | #" +
             std::to_string(r) + "\n";
    set.push_back({doc, Lang::other, "other-numbers"});
  }
  std::map<std::string, std::pair<int, int>> by_kind;
  int ok = 0;
  for (auto& it : set) {
    Lang got = identify_language(clean_text(it.text, CleanConfig{})).lang;
    by_kind[it.kind].second++;
    if (got == it.label) ok++, by_kind[it.kind].first++;
  }
  double acc = static_cast<double>(ok) / set.size();
  std::printf("[ langid ] accuracy %.4f (%d / %zu)", acc, ok, set.size());
  for (auto& [k, v] : by_kind) std::printf("  %s %d/%d", k.c_str(), v.first, v.second);
  std::printf("\n");
  RecordProperty("langid_accuracy", std::to_string(acc));
  EXPECT_GE(acc, 0.95);
  EXPECT_GE(by_kind["mixed"].first, by_kind["mixed"].second * 9 / 10);
}

TEST(DataCorpus, FiltersKeepRealTextAndRemovePlantedJunk) {
  if (!have_corpus()) GTEST_SKIP() << "no ../shared/data/corpus";
  auto cfg = default_filter_config();
  CleanConfig cc;
  auto pass_rate = [&](const std::vector<std::string>& docs, Lang lang, std::string* first_fail) {
    int ok = 0;
    for (auto& d : docs) {
      std::string c = clean_text(d, cc);
      std::string why = apply_filters(c, lang, cfg);
      if (why.empty()) ok++;
      else if (first_fail->empty()) *first_fail = why + ": " + c.substr(0, 200);
    }
    return static_cast<double>(ok) / docs.size();
  };
  std::string f1, f2, f3, f4;
  double novels = pass_rate(novel_chunks(5000, 20), Lang::zh, &f1);
  double laws = pass_rate(chunks(corpus("law-zh/刑法/刑法.md"), 5000, 30), Lang::zh, &f2);
  double wiki = pass_rate(chunks(corpus("en/wiki_demo.txt"), 5000, 60), Lang::en, &f3);
  double shakespeare = pass_rate(chunks(corpus("en/tinyshakespeare.txt"), 5000, 60), Lang::en, &f4);
  std::printf("[ filters ] kept: novels %.2f, law %.2f, wiki %.2f, shakespeare %.2f\n", novels, laws, wiki,
              shakespeare);
  EXPECT_GE(novels, 0.9) << f1;
  EXPECT_GE(laws, 0.9) << f2;
  EXPECT_GE(wiki, 0.9) << f3;
  EXPECT_GE(shakespeare, 0.8) << f4;
  // Junk made from the same real text.
  std::string para = chunks(corpus("en/wiki_demo.txt"), 400, 1)[0];
  std::string rep;
  for (int i = 0; i < 8; i++) rep += para + "\n\n";
  EXPECT_NE(apply_filters(clean_text(rep, cc), Lang::en, cfg), "");
  std::string zh = novel_chunks(600, 1)[0], zh_rep;
  for (int i = 0; i < 6; i++) zh_rep += zh + "\n";
  EXPECT_NE(apply_filters(clean_text(zh_rep, cc), Lang::zh, cfg), "");
  std::string list;  // words of the real text as a bullet list
  size_t p = 0;
  for (int i = 0; i < 80 && p < para.size(); i++) {
    size_t e = para.find(' ', p);
    if (e == std::string::npos) break;
    list += "• " + para.substr(p, e - p) + "\n";
    p = e + 1;
  }
  EXPECT_NE(apply_filters(clean_text(list, cc), Lang::en, cfg), "");
  std::string no_punct;  // Chinese characters without punctuation: keyword spam
  for (size_t i = 0; i < zh.size();) {
    char32_t cp;
    size_t len = mindllm::utf8::decode(zh, i, &cp);
    if (!len) break;
    if (is_han(cp)) no_punct.append(zh, i, len);
    i += len;
  }
  EXPECT_EQ(apply_filters(no_punct, Lang::zh, cfg), "punctuation");
}

TEST(DataCorpus, NearDuplicatePrecisionRecall) {
  if (!have_corpus()) GTEST_SKIP() << "no ../shared/data/corpus";
  // Base documents: distinct chunks of novels, Wikipedia, Shakespeare and C4.
  std::vector<std::pair<std::string, Lang>> base;
  for (auto& t : novel_chunks(1500, 40)) base.push_back({t, Lang::zh});
  for (auto& t : chunks(corpus("en/wiki_demo.txt"), 1500, 100)) base.push_back({t, Lang::en});
  auto sh = chunks(corpus("en/tinyshakespeare.txt"), 1500, 400);
  for (size_t i = 0; i < sh.size(); i += 5) base.push_back({sh[i], Lang::en});
  for (auto& t : c4_texts(300))
    if (t.size() > 800) base.push_back({t, Lang::en});
  // Variants: 1-3% of the characters/words edited, or the last 5-10% cut, or an exact copy.
  mindllm::Rng rng(11);
  std::vector<std::pair<std::string, Lang>> docs = base;
  std::vector<bool> is_dup(base.size(), false);
  for (size_t i = 0; i < base.size(); i += 2) {
    std::string t = base[i].first;
    int kind = static_cast<int>(rng.below(3));
    if (kind == 0) {  // word/char edits
      double rate = 0.01 + 0.01 * rng.below(3);
      std::string out;
      for (size_t k = 0; k < t.size();) {
        char32_t cp;
        size_t len = mindllm::utf8::decode(t, k, &cp);
        if (!len) len = 1;
        bool unit_start = base[i].second == Lang::zh ? true : (t[k] == ' ');
        if (unit_start && rng.uniform() < rate) {
          int op = static_cast<int>(rng.below(3));
          if (op == 0) {
            k += len;
            continue;
          }                                                                // delete
          if (op == 1) out += base[i].second == Lang::zh ? "之" : " foo";  // insert
          else {
            out += base[i].second == Lang::zh ? "乎" : " bar";
            k += len;
            continue;
          }  // replace
        }
        out.append(t, k, len);
        k += len;
      }
      t = out;
    } else if (kind == 1) {
      size_t cut = t.size() * (90 + rng.below(6)) / 100;
      while (cut > 0 && (static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) cut--;
      t = t.substr(0, cut);
    }
    docs.push_back({t, base[i].second});
    is_dup.push_back(true);
  }
  // Shuffle documents, keeping each variant after its original.
  DedupConfig dc;
  MinHasher h(dc);
  LshIndex lsh(dc.bands, dc.rows);
  std::vector<uint32_t> sig(dc.num_perm);
  int tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < docs.size(); i++) {
    h.signature(docs[i].first, docs[i].second, sig.data());
    bool found = lsh.query(sig.data());
    if (!found) lsh.insert(sig.data());
    if (found && is_dup[i]) tp++;
    if (found && !is_dup[i]) fp++;
    if (!found && is_dup[i]) fn++;
  }
  double precision = tp + fp ? static_cast<double>(tp) / (tp + fp) : 1, recall = static_cast<double>(tp) / (tp + fn);
  std::printf(
      "[ dedup ] %zu docs, %d planted near-duplicates: precision %.4f recall %.4f (128 perms, 16x8 bands, 5-gram "
      "shingles)\n",
      docs.size(), tp + fn, precision, recall);
  RecordProperty("dedup_precision", std::to_string(precision));
  RecordProperty("dedup_recall", std::to_string(recall));
  EXPECT_GE(precision, 0.95);
  EXPECT_GE(recall, 0.9);
}
