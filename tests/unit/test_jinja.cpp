// The Jinja subset (src/sft/jinja.h) and chat templates (src/sft/chat_template.h): every construct,
// jinja2's whitespace control under transformers' settings, errors naming the line, and limits.
// Expected strings are what jinja2 3.1 renders (tests/reference/test_chat_template.py checks the
// real templates against it byte for byte).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "test_tmp.h"
#include "sft/chat_template.h"
#include "sft/jinja.h"

using mindllm::sft::ChatTemplate;
using mindllm::sft::Message;
using mindllm::sft::jinja::Limits;
using mindllm::sft::jinja::Template;
using mindllm::sft::jinja::TemplateError;
using json = nlohmann::ordered_json;

static std::string R(const std::string& src, const json& ctx = json::object()) {
  return Template(src, "t").render(ctx);
}

// The error message of rendering src (fails the test when it renders).
static std::string E(const std::string& src, const json& ctx = json::object(), Limits limits = {}) {
  try {
    std::string out = Template(src, "t", limits).render(ctx);
    ADD_FAILURE() << "rendered: " << out;
  } catch (const TemplateError& e) {
    EXPECT_EQ(e.code, mindllm::ExitCode::bad_input);
    return e.what();
  }
  return "";
}

TEST(Jinja, TextAndOutput) {
  EXPECT_EQ(R("hello"), "hello");
  EXPECT_EQ(R("a{{ x }}b", {{"x", 5}}), "a5b");
  EXPECT_EQ(R("{{ 'a' }}{# gone #}{{ \"b\" }}"), "ab");
  EXPECT_EQ(R("trailing newline dropped\n"), "trailing newline dropped");
  EXPECT_EQ(R("two\n\n"), "two\n");
  EXPECT_EQ(R("crlf\r\nline"), "crlf\nline");
}

TEST(Jinja, Literals) {
  EXPECT_EQ(R("{{ 'a\\nb\\t\\'\\\"\\\\\\u00e9\\x41' }}"),
            "a\nb\t'\"\\\xc3\xa9"
            "A");
  EXPECT_EQ(R("{{ 42 }} {{ -3 }} {{ 1_000 }} {{ 2.5 }} {{ 1e3 }} {{ 1.0 }}"), "42 -3 1000 2.5 1000.0 1.0");
  EXPECT_EQ(R("{{ true }} {{ False }} {{ none }} {{ None }}"), "True False None None");
  EXPECT_EQ(R("{{ [1, 'a', none, [true]] }}"), "[1, 'a', None, [True]]");
  EXPECT_EQ(R("{{ {'k': 'v', 'n': 1} }}"), "{'k': 'v', 'n': 1}");
  EXPECT_EQ(R("{{ (1, 2) }} {{ (1,) }} {{ () }} {{ [] }} {{ {} }}"), "(1, 2) (1,) () [] {}");
  EXPECT_EQ(R("{{ \"it's\" }}|{{ [\"it's\"] }}"), "it's|[\"it's\"]");
  EXPECT_EQ(R("{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e-5 }} {{ 123456789.125 }} {{ 0.0001 }}"),
            "0.30000000000000004 1e+16 1e-05 123456789.125 0.0001");
}

TEST(Jinja, Operators) {
  EXPECT_EQ(R("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 8 }}"),
            "7 9 3.5 3 -4 2 256");
  EXPECT_EQ(R("{{ 'a' + 'b' }} {{ 'a' ~ 1 ~ none }} {{ 'ab' * 2 }} {{ [1] + [2] }}"), "ab a1None abab [1, 2]");
  EXPECT_EQ(R("{{ 1 == 1.0 }} {{ 1 != 2 }} {{ 1 < 2 }} {{ 'b' >= 'a' }} {{ [1, 2] == [1, 2] }} {{ true == 1 }}"),
            "True True True True True True");
  EXPECT_EQ(R("{{ 'x' in 'xyz' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ not 'x' in 'y' }}"),
            "True True True True True");
  EXPECT_EQ(R("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 3 < 2 < 1 }} {{ 2 > 1 == 1 }}"), "True False False True");
  EXPECT_EQ(R("{{ 0 or 'b' }} {{ 1 and 'c' }} {{ none or [] }} {{ not none }}"), "b c [] True");
  EXPECT_EQ(R("{{ 'y' if x else 'n' }} {{ 'y' if not x }}|", {{"x", false}}), "n y|");
  EXPECT_EQ(R("{{ 'a' if x else 'b' if y else 'c' }}", {{"x", false}, {"y", false}}), "c");
}

TEST(Jinja, SubscriptsAttributesSlices) {
  json ctx = {{"m", {{"role", "user"}, {"content", "héllo wörld"}}}, {"xs", {1, 2, 3, 4, 5}}};
  EXPECT_EQ(R("{{ m.role }} {{ m['role'] }} {{ xs[0] }} {{ xs[-1] }} {{ xs.1 }}", ctx), "user user 1 5 2");
  EXPECT_EQ(R("{{ xs[1:3] }} {{ xs[::-1] }} {{ xs[::2] }} {{ xs[-2:] }} {{ xs[:-3] }} {{ xs[4:1:-2] }}", ctx),
            "[2, 3] [5, 4, 3, 2, 1] [1, 3, 5] [4, 5] [1, 2] [5, 3]");
  EXPECT_EQ(R("{{ m.content[1] }}{{ m.content[-1] }} {{ m.content[::-1] }} {{ m.content[:5] }}", ctx),
            "éd dlröw olléh héllo");
  EXPECT_EQ(R("[{{ m.nothing }}] [{{ xs[10] }}] {{ m.nothing is defined }}", ctx), "[] [] False");
}

TEST(Jinja, ForLoops) {
  json ctx = {{"xs", {"a", "b", "c"}}};
  EXPECT_EQ(R("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ x }}"
              "{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
              ctx),
            "1032aTrueFalse3;2121bFalseFalse3;3210cFalseTrue3;");
  EXPECT_EQ(R("{% for x in xs %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }} {% endfor %}", ctx),
            "<a>b a<b>c b<c> ");
  EXPECT_EQ(R("{% for x in xs if x != 'b' %}{{ x }}{{ loop.length }}{% endfor %}", ctx), "a2c2");
  EXPECT_EQ(R("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(R("{% for x in xs %}{% if x == 'b' %}{% continue %}{% endif %}{{ x }}{% endfor %}", ctx), "ac");
  EXPECT_EQ(R("{% for x in xs %}{% if x == 'b' %}{% break %}{% endif %}{{ x }}{% endfor %}", ctx), "a");
  EXPECT_EQ(R("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{% endfor %}"), "a=1,b=2,");
  EXPECT_EQ(R("{% for k in {'z': 1, 'a': 2} %}{{ k }}{% endfor %}"), "za");
  EXPECT_EQ(R("{% for c in 'hé' %}[{{ c }}]{% endfor %}"), "[h][é]");
  EXPECT_EQ(R("{% for i in range(3) %}{% for j in range(i) %}{{ loop.index }}{% endfor %}.{% endfor %}"), ".1.12.");
  EXPECT_EQ(R("{% for x in undefined_var %}x{% else %}none{% endfor %}"), "none");
  // as jinja2: `set` in the body starts afresh each iteration; `else` runs unless an iteration
  // reached the end of the body
  EXPECT_EQ(R("{% set n = 0 %}{% for x in [1, 2, 3] %}{{ n }}{% set n = n + 1 %}{% endfor %}{{ n }}"), "0000");
  EXPECT_EQ(R("{% for x in [1, 2, 3] %}[{{ m }}]{% set m = x %}{% endfor %}"), "[][][]");
  EXPECT_EQ(R("{% for x in [1, 2] %}{% if x == 1 %}{% break %}{% endif %}a{% else %}E{% endfor %}"), "E");
  EXPECT_EQ(R("{% for x in [1, 2] %}{% if x == 2 %}{% break %}{% endif %}a{% else %}E{% endfor %}"), "a");
  EXPECT_EQ(R("{% for x in [1, 2] %}{% continue %}{% else %}E{% endfor %}"), "E");
  // set inside a loop does not leak out (namespace does)
  EXPECT_EQ(R("{% set n = 0 %}{% for x in xs %}{% set n = n + 1 %}{% endfor %}{{ n }}", ctx), "0");
  EXPECT_EQ(R("{% set ns = namespace(n=0) %}{% for x in xs %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}", ctx),
            "3");
}

TEST(Jinja, IfSetMacro) {
  EXPECT_EQ(R("{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %}", {{"x", 2}}), "two");
  EXPECT_EQ(R("{% if x %}y{% else %}n{% endif %}", {{"x", json::array()}}), "n");
  EXPECT_EQ(R("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = [3, 4] %}{% set d, e = c %}{{ e }}"), "124");
  EXPECT_EQ(R("{% set t %}in {{ 1 + 1 }}{% endset %}[{{ t }}]"), "[in 2]");
  EXPECT_EQ(R("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} "
              "{{ greet('B', '?') }} {{ greet(punct='.', name='C') }}"),
            "Hi A! Hi B? Hi C.");
  EXPECT_EQ(R("{% set ns = namespace(a=1, b='x') %}{% set ns.a = ns.a + 1 %}{{ ns.a }}{{ ns.b }}"), "2x");
  EXPECT_EQ(R("{% generation %}kept{% endgeneration %}"), "kept");
}

TEST(Jinja, TestsAndFilters) {
  EXPECT_EQ(R("{{ x is defined }} {{ y is undefined }} {{ none is none }} {{ 's' is string }} {{ 1.5 is number }} "
              "{{ 1 is integer }} {{ {} is mapping }} {{ [] is iterable }} {{ 'ab' is sequence }} {{ true is true }} "
              "{{ false is false }} {{ true is boolean }} {{ 1 is not none }} {{ 4 is divisibleby(2) }}",
              {{"x", 1}}),
            "True True True True True True True True True True True True True True");
  EXPECT_EQ(R("{{ '  a b  ' | trim }}|{{ 'ab' | upper }}|{{ 'AB' | lower }}|{{ 'hello WORLD' | capitalize }}"),
            "a b|AB|ab|Hello world");
  EXPECT_EQ(R("{{ [1, 2, 3] | length }} {{ 'héé' | length }} {{ {'a': 1} | count }} {{ x | length }}"), "3 3 1 0");
  EXPECT_EQ(R("{{ [1, 2] | join(', ') }} {{ [1, 2] | first }} {{ [1, 2] | last }} {{ 'abc' | first }}"), "1, 2 1 2 a");
  EXPECT_EQ(R("{{ x | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} {{ none | d('n') }}"),
            "d  d None");
  EXPECT_EQ(R("{{ {'a': 1} | items | list }} {{ 'ab' | list }} {{ 12 | string }} {{ '7' | int + 1 }} {{ 'x' | int }} "
              "{{ 2.9 | int }}"),
            "[('a', 1)] ['a', 'b'] 12 8 0 2");
  EXPECT_EQ(R("{{ 'hello wORLD-x 1st (a' | title }}|{{ 'hello wORLD-x 1st (a'.title() }}"),
            "Hello World-X 1st (A|Hello World-X 1St (A");
  EXPECT_EQ(R("{{ 'a-b-c' | replace('-', '+') }} {{ 'x' | safe }} {{ [1, 2] | reverse | list }} {{ 'abc' | reverse }}"),
            "a+b+c x [2, 1] cba");
  json ms = {{"ms", {{{"role", "user"}, {"c", "1"}}, {{"role", "bot"}, {"c", "2"}}, {{"role", "user"}, {"c", "3"}}}}};
  EXPECT_EQ(R("{{ ms | map(attribute='c') | join }} {{ ms | selectattr('role', 'equalto', 'user') | list | length }} "
              "{{ ms | rejectattr('role', 'equalto', 'user') | map(attribute='c') | first }} {{ ['a', 'b'] | "
              "map('upper') | list }}",
              ms),
            "123 2 2 ['A', 'B']");
}

TEST(Jinja, ToJson) {
  json ctx = {{"d", {{"b", 1}, {"a", {1.5, nullptr, true, "é\"\n\x01"}}}}};
  EXPECT_EQ(R("{{ d | tojson }}", ctx), "{\"b\": 1, \"a\": [1.5, null, true, \"é\\\"\\n\\u0001\"]}");
  EXPECT_EQ(R("{{ d | tojson(indent=2) }}", ctx),
            "{\n  \"b\": 1,\n  \"a\": [\n    1.5,\n    null,\n    true,\n    \"é\\\"\\n\\u0001\"\n  ]\n}");
  EXPECT_EQ(R("{{ {'z': 1, 'a': []} | tojson(sort_keys=true) }} {{ 'x' | tojson }}"), "{\"a\": [], \"z\": 1} \"x\"");
  EXPECT_EQ(R("{{ {'a': [1, 2]} | tojson(separators=(',', ':')) }}"), "{\"a\":[1,2]}");
  EXPECT_NE(E("{{ x | tojson }}").find("'x' is undefined"), std::string::npos);
}

TEST(Jinja, Methods) {
  EXPECT_EQ(R("{{ ' a '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ ' a'.lstrip() }}|{{ 'a\\n'.rstrip('\\n') }}|"),
            "a|a|a|a|");
  EXPECT_EQ(
      R("{{ 'a b  c'.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ 'a,b,c'.rsplit(',', 1) }}"),
      "['a', 'b', 'c'] ['a', 'b', '', 'c'] ['a', 'b,c'] ['a,b', 'c']");
  EXPECT_EQ(R("{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'Ab'.upper() }}{{ 'Ab'.lower() }}"),
            "True True ABab");
  EXPECT_EQ(R("{{ 'aXbX'.replace('X', '-') }} {{ '{} {}'.format(1, 'b') }} {{ '{0}{name}'.format(1, name='n') }}"),
            "a-b- 1 b 1n");
  EXPECT_EQ(R("{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 0) }} {{ d.keys() | list }} {{ d.values() | list }} "
              "{{ d.items() | list }}",
              {{"d", {{"a", 1}}}}),
            "1 None 0 ['a'] [1] [('a', 1)]");
  // Qwen3's reasoning split
  EXPECT_EQ(R("{{ c.split('</think>')[-1].lstrip('\\n') }}|{{ "
              "c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}",
              {{"c", "<think>\nwhy\n</think>\n\nanswer"}}),
            "answer|why");
}

TEST(Jinja, WhitespaceControl) {
  // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it goes.
  EXPECT_EQ(R("{% if true %}\nyes\n{% endif %}\nafter"), "yes\nafter");
  EXPECT_EQ(R("<\n    {% if true %}\n    x\n    {% endif %}\n>"), "<\n    x\n>");
  EXPECT_EQ(R("a\n  {# c #}\nb"), "a\nb");
  // {{ }} is neither trimmed nor lstripped
  EXPECT_EQ(R("  {{ 'v' }}\nz"), "  v\nz");
  // `-` strips all whitespace on its side, `+` keeps it
  EXPECT_EQ(R("a  \n  {{- 'b' -}}  \n  c"), "abc");
  EXPECT_EQ(R("a\n  {%- if true -%}\n  b  \n{%- endif %}"), "ab");
  EXPECT_EQ(R("a\n  {%+ if true %}b{% endif %}"), "a\n  b");
  EXPECT_EQ(R("a {{+ 'b' }} {{- 'c' }}"), "a bc");
  EXPECT_EQ(R("{% if true +%}\nb{% endif %}"), "\nb");
  // text with only spaces after an expression on the same line stays
  EXPECT_EQ(R("{{ 'x' }}  {% if true %}y{% endif %}"), "x  y");
}

TEST(Jinja, Undefined) {
  EXPECT_EQ(R("[{{ nope }}] {{ nope is defined }} {{ not nope }} {{ nope == nope }}"), "[] False True True");
  EXPECT_NE(E("line1\n{{ nope.attr }}").find("line 2: 'nope' is undefined"), std::string::npos);
  EXPECT_NE(E("{{ messages[0].role }}", {{"messages", json::array()}}).find("has no element 0"), std::string::npos);
  EXPECT_NE(E("{{ nope + 1 }}").find("'nope' is undefined"), std::string::npos);
  EXPECT_EQ(R("{{ none.attr is defined }}"), "False");
}

TEST(Jinja, ErrorsNameTheLine) {
  auto has = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
  };
  has(E("a\nb\n{{ raise_exception('Bad roles') }}"), "chat template t line 3: raise_exception: Bad roles");
  has(E("x\n{% if a %}\nunclosed"), "line 2: 'if' is never closed (missing '{% endif %}')");
  has(E("x\n\n{% endfor %}"), "line 3: unexpected '{% endfor %}'");
  has(E("{% include 'x' %}"), "line 1: unsupported tag '{% include %}'");
  has(E("\n{{ 1 +* 2 }}"), "line 2: expected an expression, got '*'");
  has(E("{{ 'abc }}"), "unterminated string literal");
  has(E("{{ x | nosuch }}"), "unsupported filter 'nosuch'");
  has(E("{{ x is nosuch }}"), "unsupported test 'nosuch'");
  has(E("{{ 1 / 0 }}"), "division by zero");
  has(E("{{ 'a' < 1 }}"), "cannot compare str with int");
  has(E("{% set x = 1 %}{% set x.a = 2 %}"), "not a namespace");
  has(E("{{ 'a'.nosuch() }}"), "unsupported method 'nosuch' of str");
  has(E("{{ x"), "unclosed '{{' tag");
  has(E("{# x"), "unclosed comment");
  has(E("{% break %}"), "outside a loop");
}

TEST(Jinja, Limits) {
  auto has = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
  };
  Limits small;
  small.max_output = 1000;
  small.max_steps = 10000;
  has(E("{% for i in range(100000) %}x{% endfor %}", json::object(), small), "too long");
  has(E("{% for i in range(2000) %}{% for j in range(2000) %}{% endfor %}{% endfor %}", json::object(), small),
      "runs too long");
  has(E("{{ 'x' * 100000 }}", json::object(), small), "too long");
  has(E("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}"),
      "too long");
  has(E("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"), "nested too deeply");
  has(E("{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}"), "nested too deeply");
  has(E("{{ " + std::string(300, '[') + std::string(300, ']') + " }}"), "nested too deeply");
  std::string deep_ifs;
  for (int i = 0; i < 200; i++) deep_ifs += "{% if true %}";
  has(E(deep_ifs), "nested too deeply");
  has(E("{% set ns = namespace(x=[]) %}{% for i in range(200) %}{% set ns.x = [ns.x] %}{% endfor %}"),
      "nested too deeply");
  has(E("{% set ns = namespace() %}{% set ns.me = ns %}"), "namespace cannot be stored");
  has(E("{{ range(10000000000) | length }}"), "too much data");
  // Scans of big values count as steps, and iterating a string counts its items as data.
  Limits few_steps;
  few_steps.max_steps = 100000;
  has(E("{% set s = 'x' * 1000000 %}{% for i in range(1000) %}{{ s[5] }}{{ s | length }}{% endfor %}", json::object(),
        few_steps),
      "runs too long");
  has(E("{% for c in 'x' * 10000000 %}{% break %}{% endfor %}"), "too much data");
  has(E("{% set ns = namespace(l=[]) %}{% for i in range(30) %}{% set ns.l = ns.l + ns.l + [i] %}{% endfor %}"
        "{{ ns.l }}"),
      "too");
}

TEST(ChatTemplate, Builtins) {
  std::vector<Message> conv = {{"system", "S"}, {"user", "Q1"}, {"assistant", "A1"}, {"user", "Q2"}};
  EXPECT_EQ(ChatTemplate::builtin("mindllm").render(conv, true),
            "<system>\nS\n<user>\nQ1\n<assistant>\nA1<|endoftext|><user>\nQ2\n<assistant>\n");
  EXPECT_EQ(ChatTemplate::builtin("chatml").render(conv, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
            "<|im_start|>user\nQ2<|im_end|>\n");
  EXPECT_EQ(ChatTemplate::builtin("llama2").render(conv, false),
            "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nQ1 [/INST] A1 </s><s>[INST] Q2 [/INST]");
  EXPECT_EQ(
      ChatTemplate::builtin("llama3").render(conv, true),
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user"
      "<|end_header_id|>\n\nQ1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nQ2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(ChatTemplate::builtin("llama3").eos_token(), "<|eot_id|>");
  try {
    ChatTemplate::builtin("nope");
    FAIL();
  } catch (const mindllm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("mindllm, chatml, llama2, llama3"), std::string::npos);
  }
}

TEST(ChatTemplate, ModelDirAndResolve) {
  namespace fs = std::filesystem;
  fs::path dir = mindllm_test::fresh_tmp_dir("chat_template");
  EXPECT_FALSE(ChatTemplate::from_model_dir(dir).has_value());
  EXPECT_THROW(ChatTemplate::resolve("", dir), mindllm::Error);
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"bos_token": {"content": "<B>"}, "chat_template": [{"name": "tool_use", "template": "T"},
            {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}]})";
  std::ofstream(dir / "config.json") << R"({"eos_token_id": 7})";
  std::ofstream(dir / "tokenizer.json") << R"({"added_tokens": [{"id": 7, "content": "<E>"}]})";
  auto t = ChatTemplate::from_model_dir(dir);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->render({{"user", "hi"}}, false), "<B>hi<E>");
  EXPECT_EQ(ChatTemplate::resolve("", dir).render({{"user", "x"}}, false), "<B>x<E>");
  EXPECT_EQ(ChatTemplate::resolve("chatml", dir).name(), "chatml");
  std::ofstream(dir / "t.jinja") << "[{{ bos_token }}{{ messages | length }}]\n";
  EXPECT_EQ(ChatTemplate::resolve((dir / "t.jinja").string(), dir).render({{"user", "x"}}, false), "[<B>1]");
  EXPECT_THROW(ChatTemplate::resolve((dir / "missing.jinja").string(), dir), mindllm::Error);
  fs::remove_all(dir);
}
