#include "sft/select_pool.h"

#include <unordered_set>

#include "data/langid.h"
#include "core/utf8.h"

using json = nlohmann::json;

namespace mindllm::sft {

std::string sample_key(const std::string& source, const json& id) { return source + "\t" + id.dump(); }

std::string conversation_text(const Conversation& c) {
  std::string s;
  for (const Message& m : c) s += m.content + "\n";
  return s;
}

namespace {

std::string language_of(const json& j, const Conversation& c) {
  for (const char* key : {"lang", "language"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string() && !it->get<std::string>().empty()) return it->get<std::string>();
  }
  return data::lang_name(data::identify_language(conversation_text(c)).lang);
}

}  // namespace

Pool load_pool(const std::vector<std::string>& files, const PoolOptions& o) {
  Pool pool;
  std::unordered_set<std::string> seen;
  int64_t index = 0;
  for (const std::string& path : files) {
    const SampleTexts texts = split_samples(read_sample_file(path));
    for (size_t i = 0; i < texts.items.size(); i++, index++) {
      pool.report.samples++;
      const std::string where = path + ":" + texts.unit + " " + std::to_string(texts.number[i]);
      PoolSample s;
      s.source = path;
      s.index = index;
      try {
        json j;
        try {
          j = json::parse(texts.items[i]);
        } catch (const json::parse_error&) {
          throw SampleError(utf8::valid(texts.items[i]) ? "invalid JSON" : "invalid UTF-8");
        }
        s.conv = to_conversation(j, o.format);
        s.id = index;
        if (auto it = j.find("id"); it != j.end() && !it->is_null()) {
          if (!it->is_string() && !it->is_number_integer())
            throw SampleError("field 'id' is not a string or an integer");
          s.id = *it;
        }
        if (!seen.insert(sample_key(path, s.id)).second) throw SampleError("duplicate id");
        s.lang = language_of(j, s.conv);
        if (!o.tag_field.empty()) {
          try {
            s.tags = tags_from_field(j, o.tag_field);
          } catch (const std::runtime_error& e) { throw SampleError(e.what()); }
        } else if (o.rules) {
          s.tags = tag_conversation(*o.rules, s.conv);
        }
      } catch (const SampleError& e) {
        pool.report.skip(e.what(), where);
        continue;
      }
      s.raw = texts.items[i];
      pool.report.kept++;
      pool.samples.push_back(std::move(s));
    }
  }
  return pool;
}

}  // namespace mindllm::sft
