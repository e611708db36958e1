// core/regex: PCRE2 on characters (not bytes), the Python and Oniguruma translations (expected values
// from Python's `re` and from Hugging Face tokenizers' Split(Regex(...), "isolated")), clear errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "core/regex.h"

using namespace mindllm;

namespace {

using V = std::vector<std::string>;

// Python's re.findall of group 0.
V findall(const std::string& pattern, const std::string& text, RegexSyntax syntax = RegexSyntax::python) {
  V out;
  Regex re(pattern, syntax, "test");
  re.for_each_match(text, EmptyMatches::python,
                    [&](const std::vector<RegexSpan>& g) { out.push_back(text.substr(g[0].begin, g[0].size())); });
  return out;
}

// Hugging Face's Split(behavior="isolated") pieces.
V hf_split(const std::string& pattern, const std::string& text) {
  V out;
  Regex re(pattern, RegexSyntax::oniguruma, "test");
  size_t prev = 0;
  auto piece = [&](size_t b, size_t e) {
    if (b < e) out.push_back(text.substr(b, e - b));
  };
  re.for_each_match(text, EmptyMatches::oniguruma, [&](const std::vector<RegexSpan>& g) {
    piece(prev, g[0].begin);
    piece(g[0].begin, g[0].end);
    prev = g[0].end;
  });
  piece(prev, text.size());
  return out;
}

std::string error_of(const std::string& pattern, RegexSyntax syntax) {
  try {
    Regex re(pattern, syntax, "where.field");
  } catch (const Error& e) {
    EXPECT_EQ(e.code, ExitCode::bad_input);
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Regex, MatchesCharactersNotBytes) {
  // A class holds characters: '：' (3 bytes) is one member, '.' one character.
  EXPECT_EQ(findall("正确答案[:：]\\s*([A-D])", "正确答案：B"), V{"正确答案：B"});
  EXPECT_EQ(findall("答案是(.)", "答案是甲"), V{"答案是甲"});
  EXPECT_EQ(findall("[，。]", "一，二。"), (V{"，", "。"}));
  EXPECT_EQ(findall("\\d+", "第١٢３题"), V{"١٢３"});  // Unicode digits, as Python
  Regex re("x(\\d)?(y)", RegexSyntax::python, "t");
  std::vector<RegexSpan> g;
  ASSERT_TRUE(re.search("..xy", 0, &g));
  EXPECT_EQ(re.group_count(), 2u);
  EXPECT_EQ(g[0].begin, 2u);
  EXPECT_FALSE(g[1].matched());
  EXPECT_TRUE(g[2].matched());
  EXPECT_FALSE(re.match("..xy"));
  EXPECT_TRUE(re.match("x1y.."));
}

TEST(Regex, PythonSemantics) {
  EXPECT_EQ(findall("x*", "axxb"), (V{"", "xx", "", ""}));  // re.findall('x*', 'axxb')
  EXPECT_EQ(findall("a|", "aa"), (V{"a", "a", ""}));
  EXPECT_EQ(findall("(?s)a.b", "a\nb"), V{"a\nb"});
  EXPECT_EQ(findall("a.b", "a\nb"), V{});
  EXPECT_EQ(findall("x{,2}", "xxx"), (V{"xx", "x", ""}));  // {,n} is {0,n}
  EXPECT_EQ(findall("a\\Z", "a\n"), V{});                  // Python's \Z: the very end
  EXPECT_EQ(findall("a$", "a\n"), V{"a"});
  EXPECT_EQ(findall("\\s+", "a\u3000\u00a0b"), V{"\u3000\u00a0"});
  EXPECT_EQ(findall("\\u00e9", "caf\u00e9"), V{"\u00e9"});
  EXPECT_EQ(Regex("[，。 ]", RegexSyntax::python, "t").replace_all("一，二。 三", ""), "一二三");
  EXPECT_EQ(Regex("x*", RegexSyntax::python, "t").replace_all("ab", "-"), "-a-b-");  // re.sub('x*', '-', 'ab')
}

TEST(Regex, OnigurumaSemanticsAsHuggingFace) {
  // \s is White_Space (not U+180E, not U+200B); \w takes marks, all numbers and connector punctuation.
  EXPECT_EQ(hf_split("\\s+", "a\u180eb\u0085c\u200bd\u3000e"), (V{"a\u180eb", "\u0085", "c\u200bd", "\u3000", "e"}));
  EXPECT_EQ(hf_split("\\w+", "a\u00b2b\u2167c\u200cd\u0301e_f\u203fi"),
            (V{"a\u00b2b\u2167c", "\u200c", "d\u0301e_f\u203fi"}));
  EXPECT_EQ(hf_split("\\h+", "abc12 xyz"), (V{"abc12", " xyz"}));  // \h: hex digit
  EXPECT_EQ(hf_split("\\v",
                     "a\x0b"
                     "b\nc"),
            (V{"a", "\x0b", "b\nc"}));                     // \v: vertical tab only
  EXPECT_EQ(hf_split("^a", "a\na"), (V{"a", "\n", "a"}));  // ^ per line
  EXPECT_EQ(hf_split("a$", "a\na"), (V{"a", "\n", "a"}));
  EXPECT_EQ(hf_split("(?m:.)+", "ab\ncd"), V{"ab\ncd"});  // Ruby's (?m): dot-all
  EXPECT_EQ(hf_split("\\b", "ab cd\u0301e"), (V{"ab", " ", "cd\u0301e"}));
  EXPECT_EQ(hf_split("\\B", "ab cd"), (V{"a", "b c", "d"}));
  EXPECT_EQ(hf_split("", "abc"), (V{"a", "b", "c"}));
  EXPECT_EQ(hf_split("x{,2}", "xxxxx"), (V{"xx", "xx", "x"}));
  EXPECT_EQ(hf_split("(?i:'s|'t)", "x'\u017fy'Sz"), (V{"x", "'\u017f", "y", "'S", "z"}));
  EXPECT_EQ(hf_split("\\p{Han}+", "\u300a三国\u300b"),
            (V{"\u300a", "三国", "\u300b"}));  // Script, not Script_Extensions
  EXPECT_EQ(hf_split("\\p{N}{1,3}", "12345 x"), (V{"123", "45", " x"}));
  EXPECT_EQ(hf_split("[^\\S\\n]+", "a \t\nb"), (V{"a", " \t", "\nb"}));
  // Invalid UTF-8 matches nothing but is covered by the pieces between matches.
  EXPECT_EQ(hf_split("\\p{L}+",
                     "ab\xff"
                     "cd\xe4\xb8"),
            (V{"ab", "\xff", "cd", "\xe4\xb8"}));
}

TEST(Regex, BadPatternsNameThePattern) {
  std::string e = error_of("a(+", RegexSyntax::python);
  EXPECT_NE(e.find("where.field: invalid regular expression 'a(+'"), std::string::npos) << e;
  EXPECT_NE(error_of("[a-z&&[^aeiou]]", RegexSyntax::oniguruma).find("intersections"), std::string::npos);
  EXPECT_NE(error_of("[a[0-9]]", RegexSyntax::oniguruma).find("nested character classes"), std::string::npos);
  EXPECT_NE(error_of("(?i:class)", RegexSyntax::oniguruma).find("'ss'"), std::string::npos);
  EXPECT_NE(error_of("[\\W]", RegexSyntax::oniguruma).find("\\W inside a character class"), std::string::npos);
  EXPECT_NE(error_of("(?a)x", RegexSyntax::oniguruma).find("inline option 'a'"), std::string::npos);
  EXPECT_NE(error_of("x\\", RegexSyntax::oniguruma).find("backslash"), std::string::npos);
  EXPECT_EQ(error_of("[[:alpha:]][[:digit:]]\\p{Latin}\\x{4e00}", RegexSyntax::oniguruma), "");
}
