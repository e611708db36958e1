// `mindllm serve`: an OpenAI-compatible HTTP server (cpp-httplib) in front of the continuous-
// batching scheduler (serve/scheduler.h). Routes, auth, limits, streaming and the access log live
// here; request parsing and the error shape in serve/api.h. docs/serve.md describes the API.
// Built only with cpp-httplib (MINDLLM_HTTP; CMakeLists.txt).
#pragma once
#include <cstddef>
#include <functional>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/types.h"
#include "model/kv_cache.h"
#include "model/weights_io.h"

namespace mindllm {

struct ServeOptions {
  std::string model_dir, tokenizer, chat_template, host = "127.0.0.1", api_key;
  InferenceWeights weights;     // --precision / --weights
  Device device = Device::cpu;  // --device: the CPU engine or the GPU's (model/engine.h make_engine)
  std::string cors_origin;      // "" (default): no CORS headers; "*" or one origin ("https://host:port")
  int port = 8080;
  int parallel = 4;           // sequences decoded together
  int max_queue = 64;         // requests (choices) waiting; more get 503
  int ctx = 0;                // positions per sequence (0: the model's, at most 4096 for rotary models)
  size_t max_body = 1 << 20;  // bytes; larger bodies get 413
  bool allow_non_finite = false;
  bool prefix_cache = true;        // keep finished requests' K/V blocks for later prompts (--no-prefix-cache: off)
  std::optional<KvType> kv_cache;  // --kv-cache: the K/V element type (none: the engine's choice)
  // Called once the model is loaded and requests are served: url, model, parallel, ctx.
  std::function<void(const nlohmann::json&)> on_ready;
  // Called after shutdown: responses, completions, prompt_tokens, completion_tokens.
  std::function<void(const nlohmann::json&)> on_stop;
};

// Binds, loads the model (/health answers 503 meanwhile), serves until SIGINT/SIGTERM, then stops
// accepting, ends the running generations and returns 0. Bad options or model: bad input.
int serve(const ServeOptions& opt);

}  // namespace mindllm
