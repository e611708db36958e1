// Chat templates: the built-ins as Jinja sources (one engine renders every template), a model
// directory's template and special tokens, and --chat-template resolution.
#include "sft/chat_template.h"

#include "core/error.h"
#include "core/file_io.h"

namespace mindllm::sft {

namespace {

using ojson = nlohmann::ordered_json;

struct Builtin {
  const char* name;
  const char* bos;
  const char* eos;
  const char* source;
};

// mindllm: the released MindLLM-1.3B chat format, "<user>\n{question}\n<assistant>\n{answer}" with
// EOS after each answer; a system message (or any other role) is "<role>\n{content}\n" in place.
// chatml: transformers' ChatML (Qwen's turns without a default system prompt). llama2:
// meta-llama/Llama-2-7b-chat-hf's template. llama3: meta-llama/Meta-Llama-3-8B-Instruct's.
const Builtin kBuiltins[] = {
    {"mindllm", "", "<|endoftext|>",
     "{%- for message in messages %}\n"
     "    {%- if message['role'] == 'assistant' %}\n"
     "        {{- '<assistant>\\n' + message['content'] + eos_token }}\n"
     "    {%- else %}\n"
     "        {{- '<' + message['role'] + '>\\n' + message['content'] + '\\n' }}\n"
     "    {%- endif %}\n"
     "{%- endfor %}\n"
     "{%- if add_generation_prompt %}\n"
     "    {{- '<assistant>\\n' }}\n"
     "{%- endif %}\n"},
    {"chatml", "", "<|im_end|>",
     "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
     "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"},
    {"llama2", "<s>", "</s>",
     "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
     "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif "
     "%}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
     "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if "
     "loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
     "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if "
     "message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] "
     "== 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"},
    {"llama3", "<|begin_of_text|>", "<|eot_id|>",
     "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
     "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
     "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% "
     "endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"},
};

ojson parse_json(const std::string& path) {
  try {
    return ojson::parse(read_file(path));
  } catch (const ojson::exception& e) { bad_input(path + ": not valid JSON: " + e.what()); }
}

// A special token in tokenizer_config.json: a string, or an AddedToken {"content": ...}.
std::optional<std::string> token_field(const ojson& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return std::nullopt;
}

// The template in a tokenizer_config.json: a string, or a list of {name, template} ("default").
std::optional<std::string> template_field(const ojson& cfg, const std::string& path) {
  auto it = cfg.find("chat_template");
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    for (auto& t : *it)
      if (t.is_object() && t.value("name", "") == "default" && t.contains("template") && t["template"].is_string())
        return t["template"].get<std::string>();
    bad_input(path + ": \"chat_template\" is a list without a template named \"default\"");
  }
  bad_input(path + ": \"chat_template\" must be a string or a list of {name, template}");
}

// bos/eos of a model directory: tokenizer_config.json, else config.json's ids in tokenizer.json.
void special_tokens(const std::filesystem::path& dir, std::string* bos, std::string* eos) {
  std::optional<std::string> b, e;
  std::string tc = (dir / "tokenizer_config.json").string();
  if (path_exists(tc)) {
    ojson cfg = parse_json(tc);
    if (cfg.is_object()) {
      b = token_field(cfg, "bos_token");
      e = token_field(cfg, "eos_token");
    }
  }
  std::string cj = (dir / "config.json").string(), tj = (dir / "tokenizer.json").string();
  if ((!b || !e) && path_exists(cj) && path_exists(tj)) {
    ojson cfg = parse_json(cj), tok = parse_json(tj);
    auto content_of = [&](const char* key) -> std::optional<std::string> {
      if (!cfg.is_object() || !cfg.contains(key) || !cfg[key].is_number_integer()) return std::nullopt;
      int64_t id = cfg[key].get<int64_t>();
      if (tok.is_object() && tok.contains("added_tokens") && tok["added_tokens"].is_array())
        for (auto& t : tok["added_tokens"])
          if (t.is_object() && t.value("id", int64_t(-1)) == id && t.contains("content") && t["content"].is_string())
            return t["content"].get<std::string>();
      return std::nullopt;
    };
    if (!b) b = content_of("bos_token_id");
    if (!e) e = content_of("eos_token_id");
  }
  *bos = b.value_or("");
  *eos = e.value_or("");
}

std::string builtin_list() {
  std::string s;
  for (auto& b : kBuiltins) s += std::string(s.empty() ? "" : ", ") + b.name;
  return s;
}

}  // namespace

ChatTemplate::ChatTemplate(std::string source, std::string bos, std::string eos, std::string name)
    : source_(std::move(source)), bos_(std::move(bos)), eos_(std::move(eos)), name_(std::move(name)),
      tmpl_(source_, name_) {}

const std::vector<std::string>& ChatTemplate::builtin_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (auto& b : kBuiltins) n.push_back(b.name);
    return n;
  }();
  return names;
}

ChatTemplate ChatTemplate::builtin(std::string_view name) {
  for (auto& b : kBuiltins)
    if (name == b.name) return ChatTemplate(b.source, b.bos, b.eos, b.name);
  bad_input("unknown chat template '" + std::string(name) + "' (built-in: " + builtin_list() + ")");
}

ChatTemplate ChatTemplate::from_source(std::string source, std::string bos, std::string eos, std::string name) {
  return ChatTemplate(std::move(source), std::move(bos), std::move(eos), std::move(name));
}

std::optional<ChatTemplate> ChatTemplate::from_model_dir(const std::filesystem::path& dir) {
  std::string source, name;
  std::string jinja_file = (dir / "chat_template.jinja").string();
  std::string tc = (dir / "tokenizer_config.json").string();
  if (path_exists(jinja_file)) {
    source = read_file(jinja_file);
    name = jinja_file;
  } else if (path_exists(tc)) {
    ojson cfg = parse_json(tc);
    std::optional<std::string> t = cfg.is_object() ? template_field(cfg, tc) : std::nullopt;
    if (!t) return std::nullopt;
    source = *t;
    name = tc;
  } else {
    return std::nullopt;
  }
  std::string bos, eos;
  special_tokens(dir, &bos, &eos);
  return ChatTemplate(std::move(source), std::move(bos), std::move(eos), std::move(name));
}

ChatTemplate ChatTemplate::resolve(const std::string& name_or_file, const std::filesystem::path& model_dir) {
  if (name_or_file.empty()) {
    if (!model_dir.empty()) {
      if (auto t = from_model_dir(model_dir)) return *t;
      bad_input(model_dir.string() +
                " has no chat template (chat_template.jinja or tokenizer_config.json's "
                "\"chat_template\"): pass --chat-template NAME|FILE (built-in: " +
                builtin_list() + ")");
    }
    bad_input("no chat template: pass --chat-template NAME|FILE (built-in: " + builtin_list() +
              ") or a model "
              "directory with one");
  }
  for (auto& b : kBuiltins)
    if (name_or_file == b.name) return builtin(name_or_file);
  if (!path_exists(name_or_file) || is_directory(name_or_file))
    bad_input("--chat-template '" + name_or_file + "' is neither a built-in template (" + builtin_list() +
              ") nor a file");
  std::string bos, eos;
  if (!model_dir.empty()) special_tokens(model_dir, &bos, &eos);
  std::string source;
  if (std::filesystem::path(name_or_file).extension() == ".json") {
    ojson cfg = parse_json(name_or_file);
    std::optional<std::string> t = cfg.is_object() ? template_field(cfg, name_or_file) : std::nullopt;
    if (!t) bad_input(name_or_file + ": no \"chat_template\" in it");
    source = *t;
    if (auto b = token_field(cfg, "bos_token")) bos = *b;
    if (auto e = token_field(cfg, "eos_token")) eos = *e;
  } else {
    source = read_file(name_or_file);
  }
  return ChatTemplate(std::move(source), std::move(bos), std::move(eos), name_or_file);
}

std::string ChatTemplate::render_json(const ojson& messages, bool add_generation_prompt, const ojson& extra) const {
  ojson ctx = ojson::object();
  ctx["messages"] = messages;
  ctx["bos_token"] = bos_;
  ctx["eos_token"] = eos_;
  ctx["add_generation_prompt"] = add_generation_prompt;
  ctx["tools"] = nullptr;
  if (extra.is_object())
    for (auto& [k, v] : extra.items()) ctx[k] = v;
  return tmpl_.render(ctx);
}

std::string ChatTemplate::render(const std::vector<Message>& messages, bool add_generation_prompt) const {
  ojson list = ojson::array();
  for (auto& m : messages) list.push_back(ojson{{"role", m.role}, {"content", m.content}});
  return render_json(list, add_generation_prompt);
}

}  // namespace mindllm::sft
