// `mindllm data prepare` / `data tokenize` as a user runs them: real text with planted
// duplicates, junk and damaged files; byte-identical output across thread counts and runs.
#include <gtest/gtest.h>
#include <zstd.h>

#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "data/shard.h"
#include "test_data_support.h"

using namespace data_test;
namespace fs = std::filesystem;

namespace {

std::string jline(const std::string& text) { return nlohmann::json({{"text", text}}).dump() + "\n"; }

// A small realistic input set: English C4 (gzip), Chinese novel chapters, planted problems.
std::string make_inputs(const std::string& dir) {
  std::string in = dir + "/in";
  fs::create_directories(in + "/zh");
  std::string novel = mindllm::read_file(corpus_dir() + "/zh/西游记.txt");
  auto ch = chunks(novel.substr(novel.find('\n', 30000) + 1), 3000, 60);
  std::string zh;
  for (auto& c : ch) zh += jline(c);
  zh += jline(ch[3]);  // exact duplicate
  size_t cut = ch[5].size() * 95 / 100;
  while ((static_cast<unsigned char>(ch[5][cut]) & 0xC0) == 0x80) cut--;
  zh += jline(ch[5].substr(0, cut) + "。");                           // near duplicate (cut)
  zh += jline(std::string(ch[7]) + "\n\n" + ch[7] + "\n\n" + ch[7]);  // repeated paragraphs: junk
  zh += "{\"text\": broken json\n";
  zh += "{\"text\": \"bad \xFF\xFE utf8\"}\n";
  zh += jline("");
  write(in + "/zh/xiyouji.jsonl", zh);
  // C4 as is, recompressed with zstd, plus a truncated zstd copy.
  std::string c4 = mindllm::read_file(corpus_dir() + "/en/c4_demo.jsonl");
  std::string z(ZSTD_compressBound(c4.size()), '\0');
  z.resize(ZSTD_compress(z.data(), z.size(), c4.data(), c4.size(), 3));
  write(in + "/c4.jsonl.zst", z);
  write(in + "/c4_truncated.jsonl.zst", z.substr(0, z.size() / 3));
  return in;
}

}  // namespace

TEST(DataCli, PrepareReportsAndIsDeterministic) {
  if (!have_corpus()) GTEST_SKIP() << "no ../shared/data/corpus";
  std::string dir = temp_dir("cli_prepare");
  std::string in = make_inputs(dir);
  std::string err;
  ASSERT_EQ(run_cli("data prepare -q --threads 1 -i " + in + " -o " + dir + "/out1", &err), 0) << err;
  ASSERT_EQ(run_cli("data prepare -q --threads 2 --pii -i " + in + " -o " + dir + "/out2", &err), 0) << err;
  auto rep = nlohmann::json::parse(mindllm::read_file(dir + "/out1/report.json"));
  EXPECT_EQ(rep["read"]["invalid_utf8"].get<int>() + rep["read"]["bad_json"].get<int>(), 2)
      << "invalid UTF-8 inside a JSON string is a JSON error or a UTF-8 error";
  EXPECT_EQ(rep["read"]["damaged_files"], 1);
  EXPECT_GE(rep["removed"]["exact_duplicate"]["total"]["docs"].get<int>(), 1 + 0);
  EXPECT_GE(rep["removed"]["exact_duplicate"]["total"]["docs"].get<int>() +
                rep["removed"]["near_duplicate"]["total"]["docs"].get<int>(),
            2 + 0);
  EXPECT_GT(rep["kept"]["zh"]["docs"].get<int>(), 50);
  EXPECT_GT(rep["kept"]["en"]["docs"].get<int>(), 100);
  EXPECT_TRUE(rep["examples"].contains("exact_duplicate"));
  // Same bytes for 1 and 2 threads, compressed output readable.
  EXPECT_EQ(mindllm::read_file(dir + "/out1/data-00000.jsonl.zst").size() > 0, true);
  std::string a = mindllm::read_file(dir + "/out1/data-00000.jsonl.zst");
  ASSERT_EQ(run_cli("data prepare -q --threads 2 -i " + in + " -o " + dir + "/out3", &err), 0) << err;
  EXPECT_EQ(a, mindllm::read_file(dir + "/out3/data-00000.jsonl.zst"));
  // No temporaries left behind.
  for (auto& e : fs::directory_iterator(dir + "/out1"))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(DataCli, BadInputIsOneLineExit2) {
  std::string dir = temp_dir("cli_bad");
  std::string err;
  write(dir + "/c.yaml", "filters:\n  length:\n    min_wrods: 3\n");
  write(dir + "/x.txt", "hello");
  EXPECT_EQ(run_cli("data prepare --config " + dir + "/c.yaml -i " + dir + "/x.txt -o " + dir + "/o", &err), 2);
  EXPECT_NE(err.find("filters.length.min_wrods"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  write(dir + "/c.yaml", "dedup: {bands: 64, rows: 8}\n");
  EXPECT_EQ(run_cli("data prepare --config " + dir + "/c.yaml -i " + dir + "/x.txt -o " + dir + "/o", &err), 2);
  EXPECT_NE(err.find("bands"), std::string::npos) << err;
  EXPECT_EQ(run_cli("data prepare -i " + dir + "/missing.jsonl -o " + dir + "/o", &err), 2);
  EXPECT_EQ(run_cli("data tokenize --tokenizer " + dir + "/x.txt -i " + dir + "/x.txt -o " + dir + "/t", &err), 2);
  EXPECT_FALSE(fs::exists(dir + "/o/report.json"));
}

TEST(DataCli, TokenizeShardsWithMixAndValidation) {
  std::string tok = std::string(MINDLLM_SOURCE_DIR) + "/../shared/data/tokenizers/qwen3/tokenizer.json";
  if (!have_corpus() || !fs::exists(tok)) GTEST_SKIP() << "no shared corpus/tokenizer";
  std::string dir = temp_dir("cli_tokenize");
  fs::create_directories(dir + "/in");
  auto zh = chunks(mindllm::read_file(corpus_dir() + "/zh/红楼梦.txt"), 1500, 150);
  auto en = chunks(mindllm::read_file(corpus_dir() + "/en/tinyshakespeare.txt"), 1500, 150);
  std::string a, b;
  for (auto& c : zh) a += jline(c);
  for (auto& c : en) b += jline(c);
  write(dir + "/in/novel.jsonl", a);
  write(dir + "/in/plays.jsonl", b);
  std::string args = "data tokenize -q --tokenizer " + tok + " -i " + dir + "/in/novel.jsonl -i " + dir +
                     "/in/plays.jsonl --mix novel=2,plays=0.5 --val-fraction 0.05 --shard-tokens 50000 --seed 3 -o ";
  std::string err;
  ASSERT_EQ(run_cli(args + dir + "/t1", &err), 0) << err;
  ASSERT_EQ(run_cli(args + dir + "/t2 --threads 1", &err), 0) << err;
  auto man = nlohmann::json::parse(mindllm::read_file(dir + "/t1/manifest.json"));
  ASSERT_EQ(man["sources"].size(), 2u);
  EXPECT_EQ(man["sources"][0]["name"], "novel");
  EXPECT_EQ(man["sources"][0]["documents"], zh.size());
  uint64_t eos = man["tokenizer"]["eos_id"];
  mindllm::TokenStream train(dir + "/t1", "train", man["tokenizer"]["vocab_size"]);
  EXPECT_EQ(train.size(), man["train"]["tokens"].get<uint64_t>());
  std::vector<int32_t> ids(train.size());
  train.copy(0, ids.size(), ids.data());
  EXPECT_EQ(static_cast<uint64_t>(std::count(ids.begin(), ids.end(), static_cast<int32_t>(eos))),
            man["train"]["documents"].get<uint64_t>());
  EXPECT_GT(man["val"]["documents"].get<int>(), 0);
  // Weighted: the novel appears about twice per document, the plays about half.
  double novel_rate = man["sources"][0]["train_documents"].get<double>() / man["sources"][0]["documents"].get<double>();
  double plays_rate = man["sources"][1]["train_documents"].get<double>() / man["sources"][1]["documents"].get<double>();
  EXPECT_NEAR(novel_rate, 2.0 * 0.95, 0.15);
  EXPECT_NEAR(plays_rate, 0.5 * 0.95, 0.15);
  // Deterministic: same seed, other thread count -> identical shards.
  for (auto& e : fs::directory_iterator(dir + "/t1")) {
    std::string n = e.path().filename().string();
    if (n.ends_with(".bin")) {
      EXPECT_EQ(mindllm::read_file(e.path().string()), mindllm::read_file(dir + "/t2/" + n)) << n;
    }
  }
  EXPECT_FALSE(fs::exists(dir + "/t1/.tmp-tokenize"));
}
