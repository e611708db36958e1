// Chat templates: a conversation → the text a model is trained on or prompted with, rendered by
// the Jinja subset of sft/jinja.h exactly as transformers' apply_chat_template renders it.
// Built-ins (mindllm, chatml, llama2, llama3), a model directory's own template, or a file.
// docs/sft.md ("Chat templates") describes the formats and how a template is found.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sft/jinja.h"
#include "sft/message.h"

namespace mindllm::sft {

class ChatTemplate {
 public:
  // A built-in template; an unknown name is bad input listing the names.
  static ChatTemplate builtin(std::string_view name);
  static const std::vector<std::string>& builtin_names();
  // A template source with its special tokens; `name` names it in errors.
  static ChatTemplate from_source(std::string source, std::string bos, std::string eos, std::string name = "(source)");
  // The template of a Hugging Face model directory: chat_template.jinja, else tokenizer_config.json's
  // "chat_template" (a string, or a list of {name, template}: the one named "default"); bos/eos
  // from tokenizer_config.json (a string or {"content": ...}), else config.json's ids looked up in
  // tokenizer.json. None when the directory has no template.
  static std::optional<ChatTemplate> from_model_dir(const std::filesystem::path& dir);
  // --chat-template NAME|FILE: a built-in name, else a file (.jinja text, or a tokenizer_config.json;
  // special tokens the file lacks come from model_dir). Empty: the model directory's template, else
  // bad input saying to pass --chat-template.
  static ChatTemplate resolve(const std::string& name_or_file, const std::filesystem::path& model_dir);

  std::string render(const std::vector<Message>& messages, bool add_generation_prompt) const;
  // The general form: `messages` a JSON array of message objects (extra fields such as
  // reasoning_content or tool_calls pass through), `extra` more variables (e.g. enable_thinking).
  std::string render_json(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                          const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

  const std::string& bos_token() const { return bos_; }
  const std::string& eos_token() const { return eos_; }
  const std::string& name() const { return name_; }
  const std::string& source() const { return source_; }

 private:
  ChatTemplate(std::string source, std::string bos, std::string eos, std::string name);
  std::string source_, bos_, eos_, name_;
  jinja::Template tmpl_;
};

}  // namespace mindllm::sft
