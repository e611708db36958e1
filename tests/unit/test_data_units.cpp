// Data pipeline pieces: streams and readers (damaged input), cleaning, PII, filters, dedup.
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include "data/clean.h"
#include "data/dedup.h"
#include "data/sha1.h"
#include "data/filters.h"
#include "data/pii.h"
#include "data/prepare.h"
#include "data/reader.h"
#include "data/tokenize.h"
#include "data/char_class.h"
#include "test_data_support.h"

using namespace mindllm::data;
using namespace data_test;

static std::string gzip(const std::string& s) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(compressBound(s.size()) + 64, '\0');
  z.next_in = (Bytef*)s.data(), z.avail_in = s.size();
  z.next_out = (Bytef*)out.data(), z.avail_out = out.size();
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}
static std::string zstd(const std::string& s) {
  std::string out(ZSTD_compressBound(s.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), s.data(), s.size(), 3));
  return out;
}

static std::vector<std::string> read_all(const std::vector<std::string>& files, ReaderConfig rc, ReadStats* st) {
  DocumentReader r(files, rc);
  std::vector<std::string> docs;
  RawDoc d;
  while (r.next(d)) docs.push_back(d.text);
  *st = r.stats();
  return docs;
}

TEST(DataReader, JsonlWithDamagedLines) {
  auto dir = temp_dir("jsonl");
  std::string big(3000, 'x');
  write(dir + "/a.jsonl",
        "{\"text\": \"first\"}\n"
        "{\"text\": \"bro\n"               // broken JSON
        "\n"                               // blank: ignored
        "{\"body\": \"no text field\"}\n"  // missing field
        "{\"text\": 5}\n"                  // not a string
        "[1,2]\n"                          // not an object
        "{\"text\": \"bad \xFF utf8\"}\n"  // invalid UTF-8 (nlohmann rejects it as JSON too)
        "{\"text\": \"" +
            big +
            "\"}\n"                                             // longer than max_doc_bytes
            "{\"text\": \"  \"}\n"                              // empty
            "{\"text\": \"last\\u00e9\", \"x\": {\"y\": 1}}");  // no final newline
  ReaderConfig rc;
  rc.max_doc_bytes = 1000;
  ReadStats st;
  auto docs = read_all({dir + "/a.jsonl"}, rc, &st);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0], "first");
  EXPECT_EQ(docs[1], "last\xC3\xA9");
  EXPECT_EQ(st.bad_json, 3u);  // broken, [1,2], invalid UTF-8
  EXPECT_EQ(st.missing_field, 2u);
  EXPECT_EQ(st.too_long, 1u);
  EXPECT_EQ(st.empty, 1u);
  EXPECT_FALSE(st.messages.empty());
  EXPECT_NE(st.messages[0].find("a.jsonl:2:"), std::string::npos) << st.messages[0];
}

TEST(DataReader, NestedFieldAndPlainTextUnits) {
  auto dir = temp_dir("units");
  write(dir + "/n.jsonl", "{\"meta\": {\"content\": \"deep\"}}\n");
  ReaderConfig rc;
  rc.text_field = "meta.content";
  ReadStats st;
  EXPECT_EQ(read_all({dir + "/n.jsonl"}, rc, &st), std::vector<std::string>{"deep"});
  write(dir + "/t.txt", "para one\nline two\n\n\n  \npara two\n\xFF bad\n\npara three");
  rc = ReaderConfig{};
  rc.text_unit = "paragraph";
  auto docs = read_all({dir + "/t.txt"}, rc, &st);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0], "para one\nline two\n");
  EXPECT_EQ(docs[1], "para three\n");
  EXPECT_EQ(st.invalid_utf8, 1u);
  rc.text_unit = "file";
  write(dir + "/t.txt", "whole\nfile\n");
  EXPECT_EQ(read_all({dir + "/t.txt"}, rc, &st), std::vector<std::string>{"whole\nfile\n"});
  rc.text_unit = "line";
  EXPECT_EQ(read_all({dir + "/t.txt"}, rc, &st), (std::vector<std::string>{"whole", "file"}));
}

// Issue 24 item 16: --encoding / reader.encoding converts Latin-1, GBK, UTF-16 input to UTF-8.
TEST(DataReader, EncodingsAreConvertedToUtf8) {
  auto dir = temp_dir("encoding");
  write(dir + "/l.txt", "caf\xE9 na\xEFve\n");
  write(dir + "/g.txt", "\xD6\xD0\xCE\xC4\n");  // 中文 in GBK
  write(dir + "/u.txt", std::string("\xFF\xFE"
                                    "a\0b\0\n\0",
                                    8));  // UTF-16 with a BOM
  ReaderConfig rc;
  ReadStats st;
  EXPECT_TRUE(read_all({dir + "/l.txt"}, rc, &st).empty());  // not UTF-8: counted, skipped
  EXPECT_EQ(st.invalid_utf8, 1u);
  rc.encoding = "latin-1";
  EXPECT_EQ(read_all({dir + "/l.txt"}, rc, &st), std::vector<std::string>{"café naïve\n"});
  rc.encoding = "GBK";
  EXPECT_EQ(read_all({dir + "/g.txt"}, rc, &st), std::vector<std::string>{"中文\n"});
  rc.encoding = "utf_16";
  EXPECT_EQ(read_all({dir + "/u.txt"}, rc, &st), std::vector<std::string>{"ab\n"});
  // Characters split across the 1 MiB read buffers, and gzip under the conversion.
  std::string big_gbk, big_utf8;
  for (int i = 0; i < 300000; i++)
    big_gbk +=
        "\xD6\xD0\xCE\xC4"
        "a",
        big_utf8 += "中文a";
  write(dir + "/big.txt.gz", gzip(big_gbk + "\n"));
  rc.encoding = "gb18030";
  auto big = read_all({dir + "/big.txt.gz"}, rc, &st);
  ASSERT_EQ(big.size(), 1u);
  EXPECT_TRUE(big[0] == big_utf8 + "\n") << big[0].size() << " bytes, expected " << big_utf8.size() + 1;
  // Bytes invalid in the encoding: the file is damaged from there, said with the position.
  write(dir + "/bad.txt", "\xD6\xD0\xFF\xFF\n");
  rc.encoding = "gbk";
  EXPECT_TRUE(read_all({dir + "/bad.txt"}, rc, &st).empty());
  EXPECT_EQ(st.damaged_files, 1u);
  ASSERT_FALSE(st.messages.empty());
  EXPECT_NE(st.messages[0].find("bad.txt: not valid gbk at byte 2"), std::string::npos) << st.messages[0];
  rc.encoding = "klingon";
  EXPECT_THROW(DocumentReader({dir + "/l.txt"}, rc), mindllm::Error);
}

TEST(DataReader, GiganticLineIsSkippedWithBoundedMemory) {
  auto dir = temp_dir("giant");
  std::string giant(5u << 20, 'a');  // 5 MB line, limit 1 MB
  write(dir + "/g.jsonl", "{\"text\": \"before\"}\n{\"text\": \"" + giant + "\"}\n{\"text\": \"after\"}\n");
  ReaderConfig rc;
  rc.max_doc_bytes = 1u << 20;
  ReadStats st;
  auto docs = read_all({dir + "/g.jsonl"}, rc, &st);
  EXPECT_EQ(docs, (std::vector<std::string>{"before", "after"}));
  EXPECT_EQ(st.too_long, 1u);
}

TEST(DataReader, CompressedAndTruncatedFiles) {
  auto dir = temp_dir("compressed");
  std::string body;
  for (int i = 0; i < 2000; i++) body += "{\"text\": \"document number " + std::to_string(i) + "\"}\n";
  write(dir + "/a.jsonl.gz", gzip(body));
  write(dir + "/b.jsonl.zst", zstd(body));
  std::string gz = gzip(body), zs = zstd(body);
  write(dir + "/c.jsonl.gz", gz.substr(0, gz.size() / 2));  // truncated
  write(dir + "/d.jsonl.zst", zs.substr(0, zs.size() / 2));
  write(dir + "/e.jsonl.gz", gzip("{\"text\": \"one\"}\n") + gzip("{\"text\": \"two\"}\n"));  // two members
  std::string corrupt = gz;
  corrupt[corrupt.size() / 2] ^= 0x55;
  write(dir + "/f.jsonl.gz", corrupt);
  ReaderConfig rc;
  ReadStats st;
  auto docs = read_all({dir + "/a.jsonl.gz", dir + "/b.jsonl.zst"}, rc, &st);
  EXPECT_EQ(docs.size(), 4000u);
  EXPECT_EQ(docs[1999], "document number 1999");
  EXPECT_EQ(st.damaged_files, 0u);
  docs = read_all({dir + "/c.jsonl.gz", dir + "/d.jsonl.zst", dir + "/e.jsonl.gz", dir + "/f.jsonl.gz"}, rc, &st);
  EXPECT_EQ(st.damaged_files, 3u);
  EXPECT_GT(docs.size(), 2u);  // what came before the damage is kept
  bool found = false;
  for (auto& m : st.messages) found |= m.find("truncated gzip") != std::string::npos;
  EXPECT_TRUE(found);
  EXPECT_EQ(std::count(docs.begin(), docs.end(), "two"), 1);
}

TEST(DataReader, GlobsAndDirectories) {
  auto dir = temp_dir("globs");
  std::filesystem::create_directories(dir + "/sub/.hidden");
  write(dir + "/sub/b.txt", "b");
  write(dir + "/sub/a.txt", "a");
  write(dir + "/sub/.hidden/x.txt", "x");
  write(dir + "/c.jsonl", "{}");
  auto files = expand_inputs({dir + "/sub", dir + "/*.jsonl"});
  ASSERT_EQ(files.size(), 3u);
  EXPECT_NE(files[0].find("sub/a.txt"), std::string::npos);
  EXPECT_NE(files[2].find("c.jsonl"), std::string::npos);
  EXPECT_THROW(expand_inputs({dir + "/nothing-*.txt"}), mindllm::Error);
  EXPECT_THROW(expand_inputs({dir + "/missing.txt"}), mindllm::Error);
}

TEST(DataClean, Steps) {
  CleanConfig cfg;
  EXPECT_EQ(clean_text("<p>Hello&nbsp;<b>world</b> &amp; co&#46;</p><script>var x = 1;</script>", cfg),
            "Hello world & co.");
  EXPECT_EQ(clean_text("a\x01\x7F b\xE2\x80\x8B c \x1B[31mred\x1B[0m\r\nnext", cfg), "a b c red\nnext");
  // NFKC folds compatibility forms but keeps Chinese full-width punctuation and U+3000 indents.
  EXPECT_EQ(normalize_nfkc_safe("ﬁle ①，你好！（测试）"), "file 1，你好！（测试）");
  EXPECT_EQ(fold_fullwidth("ＡＢＣ，１２３　x"), "ABC,123 x");
  EXPECT_EQ(traditional_to_simplified("漢語與電腦", cfg.opencc_config), "汉语与电脑");
  EXPECT_EQ(
      clean_text("# Title\n\nSee [the docs](http://x.y) and ![img](a.png) **bold**\n\n\n\n---\nEnd   of   text  ", cfg),
      "Title\n\nSee the docs and bold\n\nEnd of text");
  EXPECT_EQ(clean_text("Real text here.\nAll rights reserved 2023\nPlease enable JavaScript\n上一篇：无", cfg),
            "Real text here.");
  EXPECT_EQ(clean_text("　　滚滚长江东逝水，浪花淘尽英雄。\n\n\n　　是非成败转头空。", cfg),
            "滚滚长江东逝水，浪花淘尽英雄。\n\n是非成败转头空。");
}

// Issue 24 item 20: the Chinese ellipsis and dash survive cleaning, and runs of them do not make
// char_repeat drop a clean statute.
TEST(DataClean, ChineseEllipsisAndDashStay) {
  CleanConfig cfg;
  EXPECT_EQ(normalize_nfkc_safe("他说……好——走"), "他说……好——走");
  std::string statute =
      "第二百三十四条　故意伤害他人身体的，处三年以下有期徒刑、拘役或者管制。…………犯前款罪，致人重伤的，处三年以上"
      "十年以下有期徒刑；致人死亡或者以特别残忍手段致人重伤造成严重残疾的，处十年以上有期徒刑、无期徒刑或者死刑。"
      "本法另有规定的，依照规定。——摘自《中华人民共和国刑法》";
  std::string cleaned = clean_text(statute, cfg);
  EXPECT_NE(cleaned.find("…………"), std::string::npos);
  EXPECT_NE(cleaned.find("——"), std::string::npos);
  EXPECT_EQ(cleaned.find("..."), std::string::npos);
  auto filters = default_filter_config();
  EXPECT_EQ(apply_filters(cleaned, Lang::zh, filters), "");
  // Omission and leader runs longer than char_repeat's limit are punctuation, not junk.
  EXPECT_EQ(apply_filters(cleaned + "第一章　总则……………………………………一", Lang::zh, filters), "");
  EXPECT_EQ(apply_filters(cleaned + "哈哈哈哈哈哈哈哈哈哈哈哈", Lang::zh, filters), "char_repeat");
}

TEST(DataPii, Scrub) {
  PiiCounts c;
  EXPECT_EQ(scrub_pii("mail john.doe+x@example.co.uk now", &c), "mail <EMAIL> now");
  EXPECT_EQ(scrub_pii("电话13812345678，或 138-1234-5678", &c), "电话<PHONE>，或 <PHONE>");
  EXPECT_EQ(scrub_pii("call (555) 123-4567 or +1 555 123 4567", &c), "call <PHONE> or <PHONE>");
  EXPECT_EQ(scrub_pii("身份证号11010519491231002X。", &c), "身份证号<ID_NUMBER>。");
  EXPECT_EQ(scrub_pii("server 192.168.1.20 up", &c), "server <IP_ADDRESS> up");
  // Not PII: years, short numbers, versions with too many parts, bad ID checksums.
  EXPECT_EQ(scrub_pii("in 1998, 12 items, v1.2.3.4.5, 110105194912310021", &c),
            "in 1998, 12 items, v1.2.3.4.5, 110105194912310021");
  EXPECT_EQ(c.email, 1u);
  EXPECT_EQ(c.phone, 4u);
  EXPECT_EQ(c.id_number, 1u);
  EXPECT_EQ(c.ip, 1u);
}

TEST(DataFilters, PlantedJunk) {
  auto cfg = default_filter_config();
  std::string good =
      "The committee met on Tuesday to discuss the budget for the coming year. Members agreed that the "
      "library should have longer opening hours, and that the park needs new benches. The chair said that "
      "the town will publish the full plan with the minutes of the meeting next week, after the final vote.\n"
      "Residents who want to comment can write to the council or attend the public hearing in March.";
  EXPECT_EQ(apply_filters(good, Lang::en, cfg), "");
  std::string repeated;
  for (int i = 0; i < 20; i++) repeated += "Buy cheap watches online today at the best price with free shipping.\n";
  EXPECT_NE(apply_filters(repeated, Lang::en, cfg), "");
  std::string bullets;
  for (int i = 0; i < 60; i++) bullets += "- item number " + std::to_string(i) + " of the list and more words\n";
  EXPECT_EQ(apply_filters(bullets, Lang::en, cfg), "bullet_lines");
  EXPECT_EQ(apply_filters("too short to be a document", Lang::en, cfg), "length");
  std::string digits;
  for (int i = 0; i < 200; i++) digits += std::to_string(i * 7919) + " ";
  EXPECT_NE(apply_filters(digits + good, Lang::en, cfg), "");
  std::string zh_good =
      "话说天下大势，分久必合，合久必分。周末七国分争，并入于秦。及秦灭之后，楚、汉分争，又并入于汉。"
      "汉朝自高祖斩白蛇而起义，一统天下，后来光武中兴，传至献帝，遂分为三国。";
  EXPECT_EQ(apply_filters(zh_good, Lang::zh, cfg), "");
  EXPECT_EQ(apply_filters(zh_good + "哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈", Lang::zh, cfg), "char_repeat");
  EXPECT_EQ(
      apply_filters("手机 手机壳 手机膜 充电器 数据线 耳机 蓝牙耳机 音箱 平板 电脑 键盘 鼠标 显示器 路由器 摄像头 "
                    "移动电源 智能手表 手环 游戏机 相机 镜头 内存卡 硬盘 打印机 投影仪",
                    Lang::zh, cfg),
      "punctuation");
  EXPECT_EQ(apply_filters(zh_good, Lang::other, cfg), "language");
  // Switching a filter off lets the document through.
  auto off = cfg;
  apply_filter_json(off, nlohmann::json::parse(R"({"char_repeat": false})"), "test");
  EXPECT_NE(apply_filters(zh_good + "哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈", Lang::zh, off), "char_repeat");
  EXPECT_THROW(apply_filter_json(off, nlohmann::json::parse(R"({"nope": false})"), "t"), mindllm::Error);
  EXPECT_THROW(apply_filter_json(off, nlohmann::json::parse(R"({"length": {"min_words": "x"}})"), "t"), mindllm::Error);
}

TEST(DataDedup, MinHashEstimatesJaccard) {
  DedupConfig c;
  MinHasher h(c);
  std::string a, b;
  for (int i = 0; i < 400; i++) a += "w" + std::to_string(i) + " ";
  for (int i = 0; i < 400; i++) b += "w" + std::to_string(i < 360 ? i : i + 1000) + " ";
  auto sa = shingles(a, Lang::en, c), sb = shingles(b, Lang::en, c);
  std::vector<uint64_t> inter;
  std::set_intersection(sa.begin(), sa.end(), sb.begin(), sb.end(), std::back_inserter(inter));
  double j = static_cast<double>(inter.size()) / (sa.size() + sb.size() - inter.size());
  std::vector<uint32_t> ga(128), gb(128);
  h.signature(a, Lang::en, ga.data());
  h.signature(b, Lang::en, gb.data());
  EXPECT_NEAR(signature_similarity(ga.data(), gb.data(), 128), j, 0.12);
  LshIndex lsh(16, 8);
  lsh.insert(ga.data());
  EXPECT_TRUE(lsh.query(gb.data()));
  EXPECT_EQ(exact_text_hash("Hello,  World!"), exact_text_hash("hello world"));
  EXPECT_NE(exact_text_hash("hello world"), exact_text_hash("hello word"));
  DedupConfig bad;
  bad.bands = 20;
  EXPECT_THROW(check_dedup_config(bad), mindllm::Error);
}

static std::string sha1_hex(const std::string& s) {
  uint8_t d[20];
  sha1(s.data(), s.size(), d);
  char hex[41];
  for (int i = 0; i < 20; i++) std::snprintf(hex + 2 * i, 3, "%02x", d[i]);
  return hex;
}

TEST(DataDedup, Sha1KnownAnswersAndBothPaths) {
  // FIPS 180 examples.
  EXPECT_EQ(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(sha1_hex(std::string(1000000, 'a')), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  // datasketch's sha1_hash32(b"abc"): digest bytes a9 99 3e 36 read little-endian.
  EXPECT_EQ(sha1_hash32("abc"), 0x363e99a9u);
  // The SHA-NI and scalar compression functions agree on every padding case.
  std::string s;
  std::vector<std::string> fast;
  for (int n = 0; n < 300; n++) s.push_back(static_cast<char>(n * 37 + 11)), fast.push_back(sha1_hex(s));
  // Several at once (interleaved SHA-NI for one-block messages) = one at a time.
  std::vector<std::string> msgs;
  for (int n = 0; n < 300; n++) msgs.push_back(s.substr(0, (n * 7) % 130));
  std::vector<std::string_view> views(msgs.begin(), msgs.end());
  std::vector<uint32_t> many(msgs.size());
  sha1_hash32_many(views.data(), views.size(), many.data());
  for (size_t i = 0; i < msgs.size(); i++) EXPECT_EQ(many[i], sha1_hash32(msgs[i])) << i;
  sha1_force_scalar(true);
  s.clear();
  for (int n = 0; n < 300; n++) {
    s.push_back(static_cast<char>(n * 37 + 11));
    EXPECT_EQ(sha1_hex(s), fast[n]) << n;
  }
  sha1_force_scalar(false);
}

TEST(DataDedup, LegacySchemeIsDatasketchArithmetic) {
  // ((a*h + b) mod 2^64 mod (2^61 - 1)) & 0xffffffff for each permutation, minimum over shingles.
  DedupConfig c;
  c.scheme = "legacy";
  MinHasher h(c);
  std::vector<uint32_t> sh = {0, 1, 0xFFFFFFFFu, 0x80000000u, 12345678u, 0xDEADBEEFu};
  std::vector<uint32_t> sig(128);
  h.signature_of_shingles(sh, sig.data());
  const uint64_t p = (1ull << 61) - 1;
  for (int i = 0; i < 128; i++) {
    uint64_t a = h.perm_a()[i], b = h.perm_b()[i];
    ASSERT_TRUE(a >= 1 && a < p && b < p);
    uint32_t m = 0xFFFFFFFFu;
    for (uint32_t x : sh) m = std::min(m, static_cast<uint32_t>(((a * x + b) % p) & 0xFFFFFFFFu));
    EXPECT_EQ(sig[i], m) << i;
  }
  c.scheme = "affine32";
  MinHasher g(c);
  for (uint64_t a : g.perm_a()) EXPECT_EQ(a & 1, 1u);
  c.scheme = "nope";
  EXPECT_THROW(check_dedup_config(c), mindllm::Error);
}

TEST(DataTokenize, MixPlanIsDeterministicAndHoldsOutValidation) {
  std::vector<uint16_t> src;
  std::vector<uint32_t> local;
  for (uint32_t i = 0; i < 1000; i++) src.push_back(0), local.push_back(i);
  for (uint32_t i = 0; i < 500; i++) src.push_back(1), local.push_back(i);
  auto p1 = plan_mix(src, local, {1.0, 2.5}, 0.02, 7), p2 = plan_mix(src, local, {1.0, 2.5}, 0.02, 7);
  EXPECT_EQ(p1.train, p2.train);
  EXPECT_EQ(p1.val, p2.val);
  EXPECT_GT(p1.val.size(), 10u);
  EXPECT_LT(p1.val.size(), 60u);
  size_t n1 = 0;
  for (uint32_t d : p1.train) {
    EXPECT_EQ(std::count(p1.val.begin(), p1.val.end(), d), 0);
    n1 += src[d] == 1;
  }
  EXPECT_NEAR(n1, 2.5 * 490, 60);
  // Evenly shuffled: source 1 is spread over the whole order, not one block.
  size_t half = 0;
  for (size_t i = 0; i < p1.train.size() / 2; i++) half += src[p1.train[i]] == 1;
  EXPECT_NEAR(static_cast<double>(half) / n1, 0.5, 0.08);
  EXPECT_NE(plan_mix(src, local, {1.0, 2.5}, 0.02, 8).train, p1.train);
  auto m = parse_mix("web=1,books=2.5");
  EXPECT_EQ(m["books"], 2.5);
  EXPECT_THROW(parse_mix("web"), mindllm::Error);
  EXPECT_THROW(parse_mix("web=-1"), mindllm::Error);
  std::string path;
  EXPECT_EQ(source_name("data/web.jsonl.zst", &path), "web");
  EXPECT_EQ(source_name("books=/x/y", &path), "books");
  EXPECT_EQ(path, "/x/y");
}

TEST(DataConfig, DefaultYamlMatchesBuiltInDefaults) {
  auto cfg = mindllm::data::load_prepare_config(std::string(MINDLLM_SOURCE_DIR) + "/configs/data/default.yaml");
  EXPECT_EQ(prepare_config_to_json(cfg).dump(), prepare_config_to_json(PrepareConfig{}).dump());
  auto dir = temp_dir("config");
  write(dir + "/c.json", R"({"dedup": {"num_perm": 64, "bands": 8, "rows": 8}, "filters": {"length": false}})");
  cfg = load_prepare_config(dir + "/c.json");
  EXPECT_EQ(cfg.dedup.num_perm, 64);
  EXPECT_FALSE(cfg.filters.on("length"));
  write(dir + "/c.yaml", "clean:\n  fold_fullwidth: yes\n  bogus: 1\n");
  EXPECT_THROW(load_prepare_config(dir + "/c.yaml"), mindllm::Error);
  write(dir + "/c.yaml", "clean: [unclosed\n");
  EXPECT_THROW(load_prepare_config(dir + "/c.yaml"), mindllm::Error);
}
