// Data preparation across ranks: a file read as byte-range spans gives the documents, line numbers
// and counts of reading it whole, and the global dedup (dedup_dist.h) decides what one process's
// sequential exact + LSH pass decides. The MPI runs themselves: tests/e2e/test_dist.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "data/dedup.h"
#include "data/dedup_dist.h"
#include "data/hashing.h"
#include "data/reader.h"
#include "test_data_support.h"
#include "dist/communicator.h"

using namespace mindllm;
using namespace mindllm::data;

namespace {

struct Read {
  std::vector<std::pair<std::string, uint64_t>> docs;  // text, line
  ReadStats stats;
};

Read read_all(const std::string& path, const ReaderConfig& rc, std::vector<ReadSpan> spans = whole_files(1)) {
  DocumentReader r({path}, rc, std::move(spans));
  Read out;
  RawDoc d;
  while (r.next(d)) out.docs.emplace_back(d.text, d.line);
  out.stats = r.stats();
  return out;
}

// Every cut of the file into two spans reads what the whole file reads; *cuts counts the cuts compared.
void check_every_cut(const std::string& path, const std::string& content, const ReaderConfig& rc, size_t* cuts) {
  *cuts = 0;
  const Read whole = read_all(path, rc);
  ASSERT_GT(whole.docs.size(), 3u);
  for (uint64_t cut = 1; cut < content.size(); cut++) {
    const uint64_t before = static_cast<uint64_t>(std::count(content.begin(), content.begin() + cut, '\n'));
    Read a = read_all(path, rc, {{0, 0, cut, 0}});
    Read b = read_all(path, rc, {{0, cut, UINT64_MAX, before}});
    a.docs.insert(a.docs.end(), b.docs.begin(), b.docs.end());
    ASSERT_EQ(a.docs, whole.docs) << "cut at byte " << cut;
    a.stats.add(b.stats);
    EXPECT_EQ(a.stats.bytes, content.size());
    EXPECT_EQ(a.stats.files, 1u);
    EXPECT_EQ(a.stats.docs, whole.stats.docs);
    EXPECT_EQ(a.stats.too_long, whole.stats.too_long);
    EXPECT_EQ(a.stats.messages, whole.stats.messages) << "cut at byte " << cut;
    ++*cuts;
  }
}

}  // namespace

TEST(DataSpans, TextLinesSplitAnywhere) {
  std::string dir = data_test::temp_dir("spans_text");
  // CRLF, blank lines, a line too long, a last line without a newline.
  std::string content = "first line\r\nsecond\n\n  \nthe fourth line is here\n" + std::string(70, 'x') +
                        "\nshort\r\n\r\nlast without newline";
  data_test::write(dir + "/a.txt", content);
  ReaderConfig rc;
  rc.text_unit = "line";
  rc.max_doc_bytes = 40;
  size_t cuts = 0;
  check_every_cut(dir + "/a.txt", content, rc, &cuts);
  EXPECT_EQ(cuts, content.size() - 1);
}

TEST(DataSpans, JsonlSplitAnywhere) {
  std::string dir = data_test::temp_dir("spans_jsonl");
  std::string content =
      "{\"text\": \"one\"}\n{\"text\": \"two, \\\"quoted\\\"\"}\n{broken\n\n{\"other\": 1}\n"
      "{\"text\": \"\\u4e2d\\u6587\"}\n{\"text\": \"end\"}\n";
  data_test::write(dir + "/a.jsonl", content);
  ReaderConfig rc;
  size_t cuts = 0;
  check_every_cut(dir + "/a.jsonl", content, rc, &cuts);
  EXPECT_EQ(cuts, content.size() - 1);
  EXPECT_TRUE(splittable(dir + "/a.jsonl", rc));
  rc.encoding = "latin-1";
  EXPECT_FALSE(splittable(dir + "/a.jsonl", rc));  // a converted file is read whole
}

namespace {

// One process's rule (prepare.cpp): exact first, then LSH over the kept documents, in order.
std::vector<Verdict> sequential(const std::vector<uint64_t>& hashes, const std::vector<uint32_t>& sigs, int bands,
                                int rows) {
  FlatSet64 exact(16);
  LshIndex lsh(bands, rows);
  std::vector<Verdict> v;
  for (size_t i = 0; i < hashes.size(); i++) {
    const uint32_t* sig = sigs.data() + i * bands * rows;
    if (!exact.insert(hashes[i])) v.push_back(Verdict::exact_duplicate);
    else if (lsh.query(sig)) v.push_back(Verdict::near_duplicate);
    else lsh.insert(sig), v.push_back(Verdict::kept);
  }
  return v;
}

std::vector<Verdict> across_ranks(const std::vector<uint64_t>& hashes, const std::vector<uint32_t>& sigs, int bands,
                                  int rows, DedupAcrossRanks* out = nullptr) {
  LshIndex lsh(bands, rows);
  std::vector<uint64_t> keys;
  for (size_t i = 0; i < hashes.size(); i++)
    for (int b = 0; b < bands; b++) keys.push_back(lsh.band_key(sigs.data() + i * bands * rows, b));
  auto one = dist::single_process();
  DedupAcrossRanks r = dedup_across_ranks(*one, {hashes.size(), true, true, hashes, keys, bands});
  if (out) *out = r;
  return r.verdict;
}

}  // namespace

TEST(DataDedupAcrossRanks, ChainsAsOneProcess) {
  // A ~ B in band 0, B ~ C in band 1, A and C share nothing: B goes, so C stays (connected
  // components would remove C too); D is an exact copy of C, E shares band 1 with D only.
  const int bands = 2, rows = 1;
  std::vector<uint32_t> sigs = {1, 2, /*B*/ 1, 3, /*C*/ 4, 3, /*D*/ 9, 9, /*E*/ 5, 9};
  std::vector<uint64_t> hashes = {10, 11, 12, 12, 13};
  auto v = across_ranks(hashes, sigs, bands, rows);
  EXPECT_EQ(v, sequential(hashes, sigs, bands, rows));
  EXPECT_EQ(v, (std::vector<Verdict>{Verdict::kept, Verdict::near_duplicate, Verdict::kept, Verdict::exact_duplicate,
                                     Verdict::kept}));
}

TEST(DataDedupAcrossRanks, RandomCollisionsAsOneProcess) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 20; trial++) {
    const int bands = 1 + trial % 4, rows = 1 + trial % 3, n = 500 + 50 * trial;
    std::uniform_int_distribution<uint32_t> value(0, 3 + trial);  // few values: many shared bands, long chains
    std::uniform_int_distribution<uint64_t> hash(0, static_cast<uint64_t>(n));
    std::vector<uint32_t> sigs(static_cast<size_t>(n) * bands * rows);
    for (auto& s : sigs) s = value(rng);
    std::vector<uint64_t> hashes(n);
    for (auto& h : hashes) h = hash(rng);
    DedupAcrossRanks r;
    EXPECT_EQ(across_ranks(hashes, sigs, bands, rows, &r), sequential(hashes, sigs, bands, rows)) << "trial " << trial;
    FlatSet64 distinct(16);
    for (uint64_t h : hashes) distinct.insert(h);
    EXPECT_EQ(r.distinct_hashes, distinct.size());
  }
}
