// mindllm serve: an OpenAI-compatible HTTP server with continuous batching (serve/server.h).
#include <algorithm>
#include <string>

#include "cli/command.h"
#include "model/engine.h"
#include "cli/output.h"
#include "cli/validate.h"
#include "core/error.h"
#include "serve/server.h"

namespace mindllm::cli {

static int run_serve(int argc, char** argv) {
  CLI::App app{"Serve a model over an OpenAI-compatible HTTP API (docs/serve.md).", "mindllm serve"};
  ServeOptions o;
  int threads = 0;
  app.add_option("--model", o.model_dir, "model directory")->required();
  app.add_option("--tokenizer", o.tokenizer, "tokenizer (default: the model directory's)");
  app.add_option("--host", o.host, "address to listen on")->capture_default_str();
  app.add_option("--port", o.port, "port to listen on")->check(CLI::Range(1, 65535))->capture_default_str();
  app.add_option("--parallel", o.parallel, "sequences decoded together (continuous batching)")
      ->check(positive())
      ->capture_default_str();
  app.add_option("--max-queue", o.max_queue, "requests waiting for a sequence; more get 503")
      ->check(positive())
      ->capture_default_str();
  app.add_option("--ctx", o.ctx, "positions per sequence, prompt + answer (default: the model's, else 4096)")
      ->check(positive());
  app.add_option("--api-key", o.api_key, "require this key (Authorization: Bearer KEY or X-Api-Key)");
  app.add_option("--chat-template", o.chat_template,
                 "builtin name (mindllm, chatml, llama2, llama3) or a .jinja / tokenizer_config.json file "
                 "(default: the model directory's template)");
  app.add_option("--cors-origin", o.cors_origin,
                 "allow browsers on this origin (scheme://host[:port]) or '*' to call the API (default: CORS off)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            const bool url = (v.starts_with("http://") || v.starts_with("https://")) &&
                             v.find('/', v.find("//") + 2) == std::string::npos && v.size() > v.find("//") + 2;
            const bool clean = std::all_of(v.begin(), v.end(), [](unsigned char c) { return c > ' ' && c < 127; });
            if (v == "*" || (url && clean)) return "";
            return "must be '*' or an origin such as https://example.com:8000" +
                   (clean ? ", got '" + v + "'" : std::string(", without spaces or control characters"));
          },
          "ORIGIN|*"));
  app.add_option("--max-body", o.max_body, "largest request body in bytes; larger get 413")->capture_default_str();
  add_threads_option(app, threads);
  add_inference_weights_options(app, o.weights);
  add_device_option(app, o.device, "cpu | cuda (the GPU engine: fp32 weights, --precision bf16 for bf16 compute)");
  add_kv_cache_option(app, o.kv_cache);
  app.add_flag("--allow-non-finite", o.allow_non_finite, "serve a model whose weights hold NaN or infinities");
  bool no_prefix_cache = false;
  app.add_flag("--no-prefix-cache", no_prefix_cache,
               "do not keep finished requests' K/V blocks for later prompts that start the same way");
  OutputFlags output;  // --json: a "ready" object (url, model) and, after shutdown, the totals, each one line
  add_output_flags(app, output);
  parse_args(app, argc, argv);
  if (o.device == Device::cuda) check_cuda_device();
  apply_threads(threads);
  if (output.json) {
    o.on_ready = [&output](nlohmann::json j) {
      j["event"] = "ready";
      print_summary(output, "serve", "", j);
    };
    o.on_stop = [&output](nlohmann::json j) {
      j["event"] = "stopped";
      print_summary(output, "serve", "", j);
    };
  }
  o.prefix_cache = !no_prefix_cache;
#if MINDLLM_HTTP
  return serve(o);
#else
  bad_input("this mindllm was built without cpp-httplib: no HTTP server (install libcpp-httplib-dev and rebuild)");
#endif
}

MINDLLM_COMMAND("serve", "serve a model over an OpenAI-compatible HTTP API (continuous batching)", run_serve);

}  // namespace mindllm::cli
