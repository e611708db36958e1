// The OpenAI-compatible API's requests and errors (no HTTP here): parsing and validating
// /v1/chat/completions, /v1/completions, /tokenize, /detokenize and /apply-template bodies, and
// the error shape {"error": {"message", "type", "param", "code"}}. docs/serve.md lists the fields.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/sampling.h"
#include "sft/message.h"

namespace mindllm::api {

// A request the server refuses: the HTTP status and OpenAI's error fields.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the field at fault ("" : null)
  std::string code;   // "" : null
};
[[noreturn]] void fail(int status, const std::string& message, const std::string& param = "",
                       const std::string& code = "", const std::string& type = "");
nlohmann::json error_json(const ApiError& e);

// Parses a body as a JSON object (400 when it is not one).
nlohmann::json parse_object(const std::string& body);

struct CompletionRequest {
  bool chat = false;
  sft::Conversation messages;                      // chat
  std::string prompt_text;                         // completions: a string prompt ...
  std::optional<std::vector<int32_t>> prompt_ids;  // ... or token ids
  SamplingParams sampling;                         // OpenAI's defaults: temperature 1, top_p 1
  std::optional<uint64_t> seed;
  std::optional<int> max_tokens;
  std::vector<std::string> stop;
  int n = 1;
  // -1: no logprobs; else each token's logprob and this many alternatives (completions:
  // `logprobs: k`; chat: `logprobs: true` with `top_logprobs: k`).
  int logprobs = -1;
  bool stream = false, include_usage = false;
};

// Checks every field it knows (types, ranges; NaN cannot come through JSON); `model_id` is the
// one model served (a request naming another is refused), max_n the most choices per request.
CompletionRequest parse_completion(const nlohmann::json& body, bool chat, const std::string& model_id, int max_n);
// /apply-template's and chat's "messages": [{"role", "content": string | [{"type":"text","text"}] | null}].
sft::Conversation parse_messages(const nlohmann::json& body);
// /tokenize: {"content": string} ; /detokenize: {"tokens": [ids]}.
std::string parse_tokenize(const nlohmann::json& body);
std::vector<int32_t> parse_detokenize(const nlohmann::json& body);

}  // namespace mindllm::api
