#include "serve/api.h"

#include <cmath>
#include <limits>

namespace mindllm::api {

using nlohmann::json;

void fail(int status, const std::string& message, const std::string& param, const std::string& code,
          const std::string& type) {
  ApiError e;
  e.status = status;
  e.message = message;
  e.param = param;
  e.code = code;
  if (!type.empty()) e.type = type;
  throw e;
}

json error_json(const ApiError& e) {
  auto str_or_null = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  return {{"error",
           {{"message", e.message}, {"type", e.type}, {"param", str_or_null(e.param)}, {"code", str_or_null(e.code)}}}};
}

json parse_object(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) fail(400, "the request body is not valid JSON");
  if (!j.is_object()) fail(400, "the request body must be a JSON object");
  return j;
}

namespace {

// A field that is absent or null: nullptr; otherwise the field.
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& body, const char* name, double lo, double hi, double dflt) {
  const json* f = field(body, name);
  if (!f) return dflt;
  if (!f->is_number()) fail(400, std::string("'") + name + "' must be a number", name);
  const double v = f->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi)
    fail(400,
         std::string("'") + name + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
             f->dump(),
         name);
  return v;
}

std::optional<int64_t> integer(const json& body, const char* name, int64_t lo, int64_t hi) {
  const json* f = field(body, name);
  if (!f) return std::nullopt;
  if (!f->is_number_integer() && !f->is_number_unsigned())
    fail(400, std::string("'") + name + "' must be an integer", name);
  const bool out = f->is_number_unsigned()
                       ? f->get<uint64_t>() > (uint64_t)hi || (lo > 0 && f->get<uint64_t>() < (uint64_t)lo)
                       : f->get<int64_t>() < lo || f->get<int64_t>() > hi;
  if (out)
    fail(400,
         std::string("'") + name + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
             f->dump(),
         name);
  return f->get<int64_t>();
}

bool boolean(const json& body, const char* name) {
  const json* f = field(body, name);
  if (!f) return false;
  if (!f->is_boolean()) fail(400, std::string("'") + name + "' must be true or false", name);
  return f->get<bool>();
}

std::vector<int32_t> token_ids(const json& a, const char* name) {
  std::vector<int32_t> ids;
  for (const json& t : a) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
      fail(400, std::string("'") + name + "' must hold token ids (integers >= 0)", name);
    ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return ids;
}

}  // namespace

sft::Conversation parse_messages(const json& body) {
  const json* m = field(body, "messages");
  if (!m) fail(400, "'messages' is required", "messages");
  if (!m->is_array() || m->empty()) fail(400, "'messages' must be a non-empty array", "messages");
  sft::Conversation out;
  for (const json& msg : *m) {
    if (!msg.is_object()) fail(400, "each message must be an object", "messages");
    const json* role = field(msg, "role");
    if (!role || !role->is_string()) fail(400, "each message needs a string 'role'", "messages");
    std::string content;
    if (const json* c = field(msg, "content")) {
      if (c->is_string()) {
        content = c->get<std::string>();
      } else if (c->is_array()) {  // content parts: the text ones, joined
        for (const json& part : *c) {
          const json* text = part.is_object() ? field(part, "text") : nullptr;
          if (!text || !text->is_string() || part.value("type", "text") != "text")
            fail(400, "only text content parts are supported", "messages");
          content += text->get<std::string>();
        }
      } else {
        fail(400, "a message's 'content' must be a string or an array of text parts", "messages");
      }
    }
    out.push_back({role->get<std::string>(), std::move(content)});
  }
  return out;
}

CompletionRequest parse_completion(const json& body, bool chat, const std::string& model_id, int max_n) {
  CompletionRequest r;
  r.chat = chat;
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) fail(400, "'model' must be a string", "model");
    if (m->get<std::string>() != model_id)
      fail(400, "the model '" + m->get<std::string>() + "' does not exist; this server serves '" + model_id + "'",
           "model", "model_not_found");
  }
  if (chat) {
    r.messages = parse_messages(body);
  } else {
    const json* p = field(body, "prompt");
    if (!p) fail(400, "'prompt' is required", "prompt");
    if (p->is_string()) {
      r.prompt_text = p->get<std::string>();
    } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
      r.prompt_text = (*p)[0].get<std::string>();
    } else if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
      r.prompt_ids = token_ids(*p, "prompt");
    } else {
      fail(400, "'prompt' must be a string or an array of token ids (one prompt per request)", "prompt");
    }
  }
  r.sampling.temperature = static_cast<float>(number(body, "temperature", 0.0, 2.0, 1.0));
  r.sampling.top_p = static_cast<float>(number(body, "top_p", 0.0, 1.0, 1.0));
  if (r.sampling.top_p <= 0.0f) fail(400, "'top_p' must be in (0, 1]", "top_p");
  r.sampling.top_k = static_cast<int>(integer(body, "top_k", 0, INT32_MAX).value_or(0));
  r.sampling.min_p = static_cast<float>(number(body, "min_p", 0.0, 1.0, 0.0));
  r.sampling.presence_penalty = static_cast<float>(number(body, "presence_penalty", -2.0, 2.0, 0.0));
  r.sampling.frequency_penalty = static_cast<float>(number(body, "frequency_penalty", -2.0, 2.0, 0.0));
  r.sampling.repetition_penalty = static_cast<float>(number(body, "repetition_penalty", 0.0, 1e6, 1.0));
  if (r.sampling.repetition_penalty <= 0.0f) fail(400, "'repetition_penalty' must be > 0", "repetition_penalty");
  if (auto s = integer(body, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()))
    r.seed = static_cast<uint64_t>(*s);
  auto mt = integer(body, "max_completion_tokens", 1, INT32_MAX);
  if (!mt) mt = integer(body, "max_tokens", 1, INT32_MAX);
  if (mt) r.max_tokens = static_cast<int>(*mt);
  r.n = static_cast<int>(integer(body, "n", 1, max_n).value_or(1));
  if (const json* s = field(body, "stop")) {
    if (s->is_string()) {
      r.stop.push_back(s->get<std::string>());
    } else if (s->is_array() && s->size() <= 4) {
      for (const json& x : *s) {
        if (!x.is_string()) fail(400, "'stop' must be a string or an array of up to 4 strings", "stop");
        r.stop.push_back(x.get<std::string>());
      }
    } else {
      fail(400, "'stop' must be a string or an array of up to 4 strings", "stop");
    }
    for (const std::string& u : r.stop)
      if (u.empty()) fail(400, "'stop' strings must not be empty", "stop");
  }
  r.stream = boolean(body, "stream");
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) fail(400, "'stream_options' must be an object", "stream_options");
    r.include_usage = boolean(*so, "include_usage");
  }
  if (chat) {
    const auto top = integer(body, "top_logprobs", 0, 20);
    if (boolean(body, "logprobs")) r.logprobs = static_cast<int>(top.value_or(0));
    else if (top) fail(400, "'top_logprobs' needs 'logprobs': true", "top_logprobs");
  } else {
    if (const json* f = field(body, "logprobs"); f && f->is_boolean()) {  // as false: none
      if (f->get<bool>()) fail(400, "'logprobs' must be an integer in [0, 20]", "logprobs");
    } else if (auto k = integer(body, "logprobs", 0, 20)) {
      r.logprobs = static_cast<int>(*k);
    }
    if (field(body, "top_logprobs"))
      fail(400, "'top_logprobs' is a chat field; completions take 'logprobs': k", "top_logprobs");
  }
  // Not built (docs/serve.md): refused unless they ask for nothing, rather than silently ignored.
  for (const char* unsupported : {"logit_bias", "tools", "functions", "best_of", "echo", "suffix"}) {
    const json* f = field(body, unsupported);
    const bool nothing = !f || (f->is_boolean() && !f->get<bool>()) || (f->is_number() && f->get<double>() == 0.0) ||
                         (std::string(unsupported) == "best_of" && *f == 1) ||
                         (f->is_string() && f->get<std::string>().empty());
    if (!nothing) fail(400, std::string("'") + unsupported + "' is not supported by this server", unsupported);
  }
  return r;
}

std::string parse_tokenize(const json& body) {
  const json* c = field(body, "content");
  if (!c || !c->is_string()) fail(400, "'content' must be a string", "content");
  return c->get<std::string>();
}

std::vector<int32_t> parse_detokenize(const json& body) {
  const json* t = field(body, "tokens");
  if (!t || !t->is_array()) fail(400, "'tokens' must be an array of token ids", "tokens");
  return token_ids(*t, "tokens");
}

}  // namespace mindllm::api
