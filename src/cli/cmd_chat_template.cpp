// mindllm chat-template: render a conversation with a chat template and print the text, to debug
// templates and for golden tests against transformers' apply_chat_template.
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "core/file_io.h"
#include "sft/chat_template.h"

namespace mindllm::cli {

// --messages FILE: a JSON array of {role, content, ...}, or an object {"messages": [...], more
// variables (e.g. "enable_thinking": false)}.
static void read_messages(const std::string& path, nlohmann::ordered_json* messages, nlohmann::ordered_json* extra) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(read_file(path));
  } catch (const nlohmann::ordered_json::exception& e) { bad_input(path + ": not valid JSON: " + e.what()); }
  *extra = nlohmann::ordered_json::object();
  if (j.is_object()) {
    if (!j.contains("messages")) bad_input(path + ": an object needs a \"messages\" list");
    for (auto& [k, v] : j.items())
      if (k != "messages") (*extra)[k] = v;
    j = j["messages"];
  }
  if (!j.is_array()) bad_input(path + ": expected a list of messages (or {\"messages\": [...]})");
  for (size_t i = 0; i < j.size(); i++) {
    const auto& m = j[i];
    std::string where = path + ": message " + std::to_string(i);
    if (!m.is_object()) bad_input(where + " is not an object");
    if (!m.contains("role") || !m["role"].is_string()) bad_input(where + ": \"role\" must be a string");
    if (m.contains("content") && !m["content"].is_string() && !m["content"].is_null())
      bad_input(where + ": \"content\" must be a string");
  }
  *messages = std::move(j);
}

static int run_chat_template(int argc, char** argv) {
  CLI::App app{"Render a conversation with a chat template (as transformers' apply_chat_template) and print it.",
               "mindllm chat-template"};
  std::string model_dir, chat_template, messages_path;
  bool add_generation_prompt = false;
  app.add_option("--model", model_dir, "model directory whose template (and bos/eos tokens) to use");
  app.add_option("--chat-template", chat_template,
                 "built-in template (mindllm, chatml, llama2, llama3) or a file: .jinja text or tokenizer_config.json");
  app.add_option("--messages", messages_path,
                 "JSON file: a list of {role, content}, or {\"messages\": [...], other template variables}")
      ->required();
  app.add_flag("--add-generation-prompt", add_generation_prompt, "end with the assistant turn's opening");
  parse_args(app, argc, argv);
  if (!model_dir.empty() && !is_directory(model_dir)) bad_input("--model " + model_dir + ": not a directory");
  nlohmann::ordered_json messages, extra;
  read_messages(messages_path, &messages, &extra);
  sft::ChatTemplate t = sft::ChatTemplate::resolve(chat_template, model_dir);
  std::string text = t.render_json(messages, add_generation_prompt, extra);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

MINDLLM_COMMAND("chat-template", "render a conversation with a chat template (debugging, golden tests)",
                run_chat_template);

}  // namespace mindllm::cli
