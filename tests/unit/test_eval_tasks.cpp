// Eval task readers and helpers: CSV quoting, malformed files (missing columns, bad answer
// letters, empty subjects, broken JSON lines) give one error naming file and line; templates,
// HellaSwag preprocessing, GSM8K answer extraction and lm-eval's stderr formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "test_tmp.h"
#include "core/error.h"
#include "eval/docs.h"
#include "eval/evaluator.h"
#include "eval/task.h"

using namespace mindllm;
using namespace mindllm::eval;
namespace fs = std::filesystem;

namespace {

struct TmpDir {
  fs::path p;
  TmpDir() {
    p = mindllm_test::fresh_tmp_dir(std::string("eval_test_") +
                                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  ~TmpDir() { fs::remove_all(p); }
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories((p / rel).parent_path());
    std::ofstream(p / rel, std::ios::binary) << text;
  }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code, ExitCode::bad_input);
    return e.what();
  }
  return "(no error)";
}

std::string tasks_dir() { return std::string(MINDLLM_SOURCE_DIR) + "/configs/tasks"; }

TEST(EvalCsv, QuotingNewlinesBomAndCrlf) {
  auto recs = parse_csv("\xEF\xBB\xBFq,\"a, \"\"b\"\"\nc\",x\r\n\r\nz,1,2\n", "t.csv");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].cells[1], "a, \"b\"\nc");
  EXPECT_EQ(recs[1].line, 4);
  EXPECT_NE(error_of([] { parse_csv("a,\"b\n", "u.csv"); }).find("u.csv:1: unterminated"), std::string::npos);
}

TEST(EvalTasks, MmluPromptAndFewShot) {
  TmpDir d;
  d.write("mmlu/test/anatomy_test.csv", "\" What is 1+1? \",1,2,3,4,B\nSecond,a,b,c,d,D\n");
  d.write("mmlu/dev/anatomy_dev.csv", "Q1,w,x,y,z,A\nQ2,w,x,y,z,C\n");
  TaskSpec s = load_task_spec("mmlu", {tasks_dir()}, "");
  auto subs = load_subjects(s, d.p.string(), 1, 2);
  ASSERT_EQ(subs.size(), 1u);
  EXPECT_EQ(subs[0].name, "mmlu_anatomy");
  EXPECT_EQ(subs[0].group, "mmlu_stem");
  EXPECT_EQ(subs[0].n_total, 2);
  ASSERT_EQ(subs[0].items.size(), 1u);
  EXPECT_EQ(subs[0].items[0].context,
            "The following are multiple choice questions (with answers) about anatomy.\n\n"
            "Q1\nA. w\nB. x\nC. y\nD. z\nAnswer: A\n\nQ2\nA. w\nB. x\nC. y\nD. z\nAnswer: C\n\n"
            "What is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:");
  EXPECT_EQ(subs[0].items[0].gold, 1);
}

TEST(EvalTasks, MalformedFilesNameFileAndLine) {
  TaskSpec s = load_task_spec("mmlu", {tasks_dir()}, "");
  {
    TmpDir d;
    d.write("mmlu/test/x_test.csv", "q,a,b,c,d,A\nq,a,b,c,d,E\n");
    std::string e = error_of([&] { load_subjects(s, d.p.string(), -1, 0); });
    EXPECT_NE(e.find("x_test.csv:2: answer 'E'"), std::string::npos) << e;
  }
  {
    TmpDir d;
    d.write("mmlu/test/x_test.csv", "q,a,b,c,d,A\nq,a,b,c\n");
    std::string e = error_of([&] { load_subjects(s, d.p.string(), -1, 0); });
    EXPECT_NE(e.find("x_test.csv:2: 4 columns, expected 6"), std::string::npos) << e;
  }
  {
    TmpDir d;
    d.write("mmlu/test/x_test.csv", "\n");
    std::string e = error_of([&] { load_subjects(s, d.p.string(), -1, 0); });
    EXPECT_NE(e.find("x_test.csv: no items"), std::string::npos) << e;
  }
  {
    TmpDir d;
    d.write("mmlu/test/x_test.csv", "q,a,b,c,d,A\n");
    std::string e = error_of([&] { load_subjects(s, d.p.string(), -1, 5); });
    EXPECT_NE(e.find("x_dev.csv: few-shot file missing"), std::string::npos) << e;
  }
  TaskSpec h = load_task_spec("hellaswag", {tasks_dir()}, "");
  {
    TmpDir d;
    d.write("hellaswag/hellaswag_val.jsonl",
            "{\"activity_label\": \"A\", \"ctx\": \"c\", \"endings\": [\"x\", \"y\"], \"label\": 1}\n{\"ctx\": \n");
    std::string e = error_of([&] { load_subjects(h, d.p.string(), -1, 0); });
    EXPECT_NE(e.find("hellaswag_val.jsonl:2: not valid JSON"), std::string::npos) << e;
  }
  {
    TmpDir d;
    d.write("hellaswag/hellaswag_val.jsonl",
            "{\"activity_label\": \"A\", \"ctx\": \"c\", \"endings\": [\"x\"], \"label\": 3}\n");
    std::string e = error_of([&] { load_subjects(h, d.p.string(), -1, 0); });
    EXPECT_NE(e.find("hellaswag_val.jsonl:1: answer index '3'"), std::string::npos) << e;
  }
  {
    TmpDir d;
    d.write("hellaswag/hellaswag_val.jsonl", "{\"activity_label\": \"A\", \"endings\": [\"x\"], \"label\": 0}\n");
    std::string e = error_of([&] { load_subjects(h, d.p.string(), -1, 0); });
    EXPECT_NE(e.find("hellaswag_val.jsonl:1: the item has none of the fields"), std::string::npos) << e;
  }
}

TEST(EvalTasks, HellaswagOfficialAndArcOfficialLayouts) {
  TmpDir d;
  d.write("hellaswag/hellaswag_val.jsonl",
          "{\"activity_label\": \"Roof\", \"ctx_a\": \"A man [title] sits.\", \"ctx_b\": \"he\", "
          "\"endings\": [\" rips  tiles [header] off.\", \"b\"], \"label\": \"0\"}\n");
  auto hs = load_subjects(load_task_spec("hellaswag", {tasks_dir()}, ""), d.p.string(), -1, 0);
  EXPECT_EQ(hs[0].items[0].context, "Roof: A man. sits. He");
  EXPECT_EQ(hs[0].items[0].choices[0], "rips tiles off.");
  d.write("arc/ARC-Easy/ARC-Easy-Test.jsonl",
          "{\"question\": {\"stem\": \"Why?\", \"choices\": [{\"text\": \"x\", \"label\": \"1\"}, "
          "{\"text\": \"y\", \"label\": \"2\"}]}, \"answerKey\": \"2\"}\n");
  auto arc = load_subjects(load_task_spec("arc_easy", {tasks_dir()}, ""), d.p.string(), -1, 0);
  EXPECT_EQ(arc[0].items[0].context, "Question: Why?\nAnswer:");
  EXPECT_EQ(arc[0].items[0].gold, 1);
  EXPECT_EQ(arc[0].items[0].choices, (std::vector<std::string>{"x", "y"}));
}

TEST(EvalHelpers, StripExtractAndStderr) {
  EXPECT_EQ(py_strip("\xE3\x80\x80 a b\n\t"), "a b");  // U+3000 is whitespace to Python
  EXPECT_EQ(py_rstrip("x：  "), "x：");
  ExtractFilter strict{"strict-match", "#### (\\-?[0-9\\.\\,]+)", 0, "[invalid]"};
  ExtractFilter flex{"flexible-extract", "(-?[$0-9.,]{2,})|(-?[0-9]+)", -1, "[invalid]"};
  EXPECT_EQ(extract_answer("so 3 + 4\n#### 1,234.", strict), "1,234.");
  EXPECT_EQ(extract_answer("no answer", strict), "[invalid]");
  EXPECT_EQ(extract_answer("it is 7 then $12.", flex), "$12.");
  TaskSpec g = load_task_spec("gsm8k", {tasks_dir()}, "");
  EXPECT_EQ(normalize_for_exact_match("Janet...\n#### 1,234", g), "1234");
  EXPECT_EQ(normalize_for_exact_match("$1,234.", g), "1234");
  EXPECT_NEAR(mean_stderr({1, 0, 0, 1}), std::sqrt(1.0 / 3.0) / 2.0, 1e-12);
  EXPECT_TRUE(std::isnan(mean_stderr({1})));
  // pooled over two subtasks of 4 items each equals lm-eval's formula
  double p = pooled_stderr({0.25, 0.5}, {4, 4});
  EXPECT_NEAR(p, std::sqrt((3 * 0.0625 * 4 + 3 * 0.25 * 4) / 6.0 / 8.0), 1e-12);
}

// Filters run on characters (PCRE2 in UTF mode), as Python's re: a byte-wise engine scored these 0.
TEST(EvalHelpers, RegexesMatchCharactersNotBytes) {
  ExtractFilter zh{"zh", "正确答案[:：]\\s*([A-D])", 0, "[invalid]"};
  EXPECT_EQ(extract_answer("解析……正确答案：B", zh), "B");
  EXPECT_EQ(extract_answer("正确答案:C", zh), "C");
  ExtractFilter one{"one", "答案是(.)", 0, "[invalid]"};
  EXPECT_EQ(extract_answer("所以答案是甲。", one), "甲");
  TaskSpec spec;
  spec.where = "t";
  spec.ignore_regexes = {"[，。]"};
  EXPECT_EQ(normalize_for_exact_match("一，二。", spec), "一二");
  // A bad pattern is refused when the spec is read, naming it.
  TmpDir d;
  d.write(
      "bad.json",
      R"({"output_type": "generate_until", "data": "x", "test": "t.jsonl", "filters": [{"name": "f", "regex": "a(+"}]})");
  std::string e = error_of([&] { load_task_spec((d.p / "bad.json").string(), {}, ""); });
  EXPECT_NE(e.find("bad.json: filter f: invalid regular expression 'a(+'"), std::string::npos) << e;
}

TEST(EvalTasks, UnknownTaskListsBuiltins) {
  std::string e = error_of([] { load_task_spec("nope", {tasks_dir()}, ""); });
  EXPECT_NE(e.find("unknown task 'nope'"), std::string::npos);
  EXPECT_NE(e.find("mmlu"), std::string::npos);
}

// Issue 24 item 6: the Markdown table's numbers are right at any magnitude.
TEST(EvalHelpers, MetricCellsAtAnyMagnitude) {
  EXPECT_EQ(format_metric(0.25), "0.2500");
  EXPECT_EQ(format_metric(281.7171), "281.7171");
  EXPECT_EQ(format_metric(2.8171717e21), "2.8172e+21");
  EXPECT_EQ(format_metric(1234567.0), "1.2346e+06");
  EXPECT_EQ(format_metric(3e-7), "3.0000e-07");
  EXPECT_EQ(format_metric(0.0), "0.0000");
  EXPECT_EQ(format_metric(NAN), "nan");
  EXPECT_EQ(format_metric(INFINITY), "inf");
  EXPECT_EQ(format_metric("N/A"), "N/A");
  EXPECT_EQ(format_metric("inf"), "inf");
  nlohmann::json r = {{"results",
                       {{"wiki",
                         {{"alias", "wiki"},
                          {"n", 2},
                          {"word_perplexity,none", 2.8171717e21},
                          {"word_perplexity_stderr,none", "N/A"}}}}}};
  EXPECT_NE(markdown_table(r).find("| wiki | word_perplexity | none | 2 | 2.8172e+21 | N/A |"), std::string::npos)
      << markdown_table(r);
}

// Issue 24 items 15 and 12: typos and wrong types in a spec are errors naming the key and file.
TEST(EvalTasks, SpecKeysAndTypesAreChecked) {
  TmpDir d;
  auto spec_error = [&](const std::string& json_text) {
    d.write("s.json", json_text);
    return error_of([&] { load_task_spec((d.p / "s.json").string(), {}, ""); });
  };
  const std::string base = R"("data": "x", "test": "t.jsonl", "doc_to_text": "{q}", "doc_to_target": {"index": "a"}, )";
  EXPECT_NE(spec_error("{" + base + R"("num_fewshots": 5})").find("s.json: unknown key 'num_fewshots'"),
            std::string::npos);
  EXPECT_NE(spec_error("{" + base + R"("num_fewshot": "5"})").find("'num_fewshot' must be an integer >= 0"),
            std::string::npos);
  EXPECT_NE(spec_error("{" + base + R"("doc_to_target": {"leter": "a"}})").find("unknown key 'doc_to_target.leter'"),
            std::string::npos);
  EXPECT_NE(spec_error("{" + base + R"("generation": {"max_gen_toks": 0}})").find("'generation.max_gen_toks' must be"),
            std::string::npos);
  EXPECT_NE(spec_error("{" + base + R"("subject_names": {"a": 1}})").find("'subject_names.a' must be a string"),
            std::string::npos);
  EXPECT_NE(spec_error(R"({"data": "x", "test": "t.jsonl", "doc_to_target": "{a}"})").find("missing 'doc_to_text'"),
            std::string::npos);
  // every built-in spec passes
  for (auto& n : builtin_task_names({})) EXPECT_NO_THROW(load_task_spec(n, {}, "opencompass")) << n;
}

// Issue 24 item 19: template errors say which template, which spec field and task, and why.
TEST(EvalTasks, TemplateErrorsSayWhichTemplateAndWhy) {
  nlohmann::json doc = {{"options", nullptr}, {"q", "x"}};
  std::string e = error_of([&] { render_template("Q: {q} {options|join}", doc, "f.jsonl:3 (task t, doc_to_text)"); });
  EXPECT_NE(e.find("f.jsonl:3 (task t, doc_to_text): template \"Q: {q} {options|join}\": filter 'join' needs a list, "
                   "but field 'options' is null"),
            std::string::npos)
      << e;
  e = error_of([&] { render_template("{q|shout}", doc, "w"); });
  EXPECT_NE(e.find("template \"{q|shout}\": unknown template filter 'shout'"), std::string::npos) << e;
}

}  // namespace
