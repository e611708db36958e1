#include "sft/sft_data.h"

#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "core/jsonl.h"
#include "data/stream.h"
#include "core/utf8.h"

using json = nlohmann::json;

namespace mindllm::sft {

SftFormat sft_format_from_name(const std::string& name) {
  if (name == "auto") return SftFormat::auto_detect;
  if (name == "alpaca") return SftFormat::alpaca;
  if (name == "sharegpt") return SftFormat::sharegpt;
  if (name == "messages" || name == "openai") return SftFormat::messages;
  bad_input("--format " + name + ": expected auto, alpaca, sharegpt or messages");
}

std::vector<SftSource> parse_sft_sources(const std::string& spec) {
  std::vector<SftSource> out;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    std::string item = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? spec.size() + 1 : comma + 1;
    if (item.empty()) bad_input("--data " + spec + ": empty file name");
    SftSource s{item, 1.0};
    size_t colon = item.rfind(':');
    if (colon != std::string::npos) {
      const std::string w = item.substr(colon + 1);
      char* end = nullptr;
      double v = std::strtod(w.c_str(), &end);
      if (!w.empty() && end == w.c_str() + w.size()) {
        if (!std::isfinite(v) || v <= 0) bad_input("--data " + item + ": the weight must be a positive number");
        s = {item.substr(0, colon), v};
      }
    }
    out.push_back(s);
  }
  return out;
}

int64_t LoadReport::skipped_total() const {
  int64_t n = 0;
  for (const auto& [reason, count] : skipped) n += count;
  return n;
}

void LoadReport::skip(const std::string& reason, const std::string& where) {
  skipped[reason]++;
  if (examples.size() < 5) examples.push_back(where + ": " + reason);
}

std::string LoadReport::summary() const {
  std::string s = std::to_string(samples) + " samples, " + std::to_string(kept) + " kept";
  if (skipped_total() == 0) return s;
  s += ", " + std::to_string(skipped_total()) + " skipped (";
  bool first = true;
  for (const auto& [reason, count] : skipped) {
    s += (first ? "" : ", ") + reason + ": " + std::to_string(count);
    first = false;
  }
  return s + ")";
}

namespace {

const json* field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string string_field(const json& obj, const char* key, bool required) {
  const json* v = field(obj, key);
  if (!v) {
    if (required) throw SampleError(std::string("missing field '") + key + "'");
    return {};
  }
  if (!v->is_string()) throw SampleError(std::string("field '") + key + "' is not a string");
  return v->get<std::string>();
}

// OpenAI content: a string, or a list of parts of which the text ones are joined.
std::string content_of(const json& v, const char* key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string s;
    for (const json& part : v) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
        throw SampleError(std::string("field '") + key + "' has a part that is not text");
      s += part["text"].get<std::string>();
    }
    return s;
  }
  throw SampleError(std::string("field '") + key + "' is not a string");
}

std::string role_of(const std::string& r) {
  if (r == "system") return "system";
  if (r == "user" || r == "human") return "user";
  if (r == "assistant" || r == "gpt" || r == "chatgpt" || r == "bot") return "assistant";
  throw SampleError("unknown role '" + r + "'");
}

Conversation from_alpaca(const json& s) {
  Conversation c;
  std::string system = string_field(s, "system", false);
  if (!system.empty()) c.push_back({"system", system});
  if (const json* h = field(s, "history")) {
    if (!h->is_array()) throw SampleError("field 'history' is not a list of [user, assistant] pairs");
    for (const json& turn : *h) {
      if (!turn.is_array() || turn.size() != 2 || !turn[0].is_string() || !turn[1].is_string())
        throw SampleError("field 'history' is not a list of [user, assistant] pairs");
      c.push_back({"user", turn[0].get<std::string>()});
      c.push_back({"assistant", turn[1].get<std::string>()});
    }
  }
  std::string prompt = string_field(s, "instruction", true), input = string_field(s, "input", false);
  if (!input.empty()) prompt += prompt.empty() ? input : "\n" + input;
  c.push_back({"user", prompt});
  c.push_back({"assistant", string_field(s, "output", true)});
  return c;
}

Conversation from_turns(const json& s, const char* list, const char* role_key, const char* content_key) {
  const json* turns = field(s, list);
  if (!turns) throw SampleError(std::string("missing field '") + list + "'");
  if (!turns->is_array()) throw SampleError(std::string("field '") + list + "' is not a list");
  Conversation c;
  std::string system = string_field(s, "system", false);
  if (!system.empty()) c.push_back({"system", system});
  for (const json& t : *turns) {
    if (!t.is_object()) throw SampleError(std::string("an item of '") + list + "' is not an object");
    const json* r = field(t, role_key);
    const json* v = field(t, content_key);
    if (!r || !r->is_string()) throw SampleError(std::string("a turn has no string '") + role_key + "'");
    if (!v) throw SampleError(std::string("a turn has no '") + content_key + "'");
    c.push_back({role_of(r->get<std::string>()), content_of(*v, content_key)});
  }
  return c;
}

// An optional system message, then user and assistant turns alternating, ending with the
// assistant; every assistant turn has text.
void check_conversation(const Conversation& c) {
  size_t i = !c.empty() && c[0].role == "system" ? 1 : 0;
  if (i == c.size()) throw SampleError("no turns");
  for (size_t k = i; k < c.size(); k++) {
    const char* want = (k - i) % 2 == 0 ? "user" : "assistant";
    if (c[k].role != want)
      throw SampleError("turns out of order (expected " + std::string(want) + ", got " + c[k].role + ")");
    if (c[k].role == "assistant" && c[k].content.find_first_not_of(" \t\r\n") == std::string::npos)
      throw SampleError("empty assistant turn");
  }
  if (c.back().role != "assistant") throw SampleError("ends without an assistant turn");
  for (const Message& m : c)
    if (!utf8::valid(m.content)) throw SampleError("invalid UTF-8");
}

std::string read_all(const std::string& path) {
  try {
    data::ByteSource src(path);
    std::string text;
    char buf[1 << 16];
    for (size_t n; (n = src.read(buf, sizeof(buf))) > 0;) text.append(buf, n);
    return text;
  } catch (const data::StreamError& e) {
    bad_input(e.what());  // names the file
  }
}

// The top-level items of a JSON array, as text, split without parsing them (so one broken item
// costs only itself): commas at depth 1 outside strings.
std::vector<std::string> split_array(const std::string& text, size_t open) {
  std::vector<std::string> items;
  int depth = 0;
  bool in_string = false, escaped = false;
  size_t start = open + 1;
  for (size_t i = open; i < text.size(); i++) {
    char ch = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
      continue;
    }
    if (ch == '"') in_string = true;
    else if (ch == '[' || ch == '{') depth++;
    else if (ch == ']' || ch == '}') {
      if (--depth == 0) {
        std::string last = text.substr(start, i - start);
        if (last.find_first_not_of(" \t\r\n") != std::string::npos || !items.empty()) items.push_back(last);
        return items;
      }
    } else if (ch == ',' && depth == 1) {
      items.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  items.push_back(text.substr(start));  // unterminated: the last item fails to parse and is counted
  return items;
}

}  // namespace

Conversation to_conversation(const json& s, SftFormat format) {
  if (!s.is_object()) throw SampleError("not a JSON object");
  if (format == SftFormat::auto_detect) {
    if (s.contains("messages")) format = SftFormat::messages;
    else if (s.contains("conversations")) format = SftFormat::sharegpt;
    else if (s.contains("instruction")) format = SftFormat::alpaca;
    else throw SampleError("unknown sample format (no 'messages', 'conversations' or 'instruction')");
  }
  Conversation c = format == SftFormat::alpaca     ? from_alpaca(s)
                   : format == SftFormat::sharegpt ? from_turns(s, "conversations", "from", "value")
                                                   : from_turns(s, "messages", "role", "content");
  check_conversation(c);
  return c;
}

std::vector<Conversation> load_conversations(const std::string& path, SftFormat format, bool strict,
                                             LoadReport& report) {
  return parse_conversations(read_all(path), path, format, strict, report);
}

SampleTexts split_samples(const std::string& text) {
  size_t first = text.find_first_not_of(" \t\r\n\xEF\xBB\xBF");
  SampleTexts out;
  if (first != std::string::npos && text[first] == '[') {
    out.items = split_array(text, first);
    out.unit = "item";
    for (size_t i = 0; i < out.items.size(); i++) out.number.push_back(i + 1);
    return out;
  }
  out.unit = "line";
  for_each_jsonl_line(text, [&](std::string_view line, int no) {
    out.items.emplace_back(line);
    out.number.push_back(no);
  });
  return out;
}

std::string read_sample_file(const std::string& path) { return read_all(path); }

std::vector<Conversation> parse_conversations(const std::string& text, const std::string& path, SftFormat format,
                                              bool strict, LoadReport& report) {
  const SampleTexts samples = split_samples(text);
  std::vector<Conversation> out;
  for (size_t i = 0; i < samples.items.size(); i++) {
    const std::string& item = samples.items[i];
    report.samples++;
    const std::string where = path + ":" + samples.unit + " " + std::to_string(samples.number[i]);
    try {
      json j;
      try {
        j = json::parse(item);
      } catch (const json::parse_error&) { throw SampleError(utf8::valid(item) ? "invalid JSON" : "invalid UTF-8"); }
      out.push_back(to_conversation(j, format));
      report.kept++;
    } catch (const SampleError& e) {
      if (strict) bad_input(where + ": " + e.what() + " (--strict)");
      report.skip(e.what(), where);
    }
  }
  return out;
}

}  // namespace mindllm::sft
