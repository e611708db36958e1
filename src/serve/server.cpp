#include "serve/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "core/interrupt.h"
#include "model/engine.h"
#include "model/model.h"
#include "model/weights_io.h"
#include "serve/api.h"
#include "serve/metrics.h"
#include "serve/scheduler.h"
#include "serve/stop_tokens.h"
#include "sft/chat_template.h"
#include "tokenizer/tokenizer.h"

extern "C" const char* mindllm_chat_html();  // src/serve/web/chat.html (generated/web_page.cpp)

namespace mindllm {

namespace {

using api::fail;
using nlohmann::json;

const char* openai_finish(FinishReason f) {
  switch (f) {
    case FinishReason::stop: return "stop";
    case FinishReason::length:
    case FinishReason::context: return "length";
    case FinishReason::cancelled: return "abort";
  }
  return "stop";
}

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const api::ApiError& e) {
  if (e.status == 503) res.set_header("Retry-After", "1");
  send_json(res, e.status, api::error_json(e));
}

// What one completion request runs: its prompt and the jobs of its n choices.
struct Prepared {
  api::CompletionRequest req;
  std::vector<int32_t> prompt;
  std::string id;
  int64_t created = 0;
};

class Server {
 public:
  explicit Server(const ServeOptions& o) : opt_(o) {}
  int run();

 private:
  void routes();
  void check_auth(const httplib::Request& q) const;
  void require_ready() const {
    if (!ready_) fail(503, "the model is still loading", "", "model_loading", "server_error");
  }
  Prepared prepare(const httplib::Request& q, bool chat);
  void complete(const httplib::Request& q, httplib::Response& res, bool chat);
  json chunk(const Prepared& p, json choices) const;
  // offset: the completion's characters so far (completions' text_offset), advanced past these tokens.
  json logprobs_json(const std::vector<TokenLogprob>& lps, bool chat, int64_t& offset) const;

  ServeOptions opt_;
  httplib::Server http_;
  std::atomic<bool> ready_{false};
  std::string model_id_;
  ModelConfig cfg_;
  std::string weights_;
  std::optional<Tokenizer> tok_;
  std::optional<sft::ChatTemplate> tmpl_;
  std::vector<int32_t> eos_stops_, chat_stops_;
  TokenText token_text_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<InferenceEngine> engine_;
  std::unique_ptr<Scheduler> scheduler_;
  std::atomic<uint64_t> counter_{0};
  ServeMetrics metrics_;
  uint64_t seed_base_ = std::random_device{}();
};

void Server::check_auth(const httplib::Request& q) const {
  if (opt_.api_key.empty()) return;
  const std::string bearer = q.get_header_value("Authorization");
  if (bearer == "Bearer " + opt_.api_key || q.get_header_value("X-Api-Key") == opt_.api_key) return;
  fail(401, "a valid API key is required (Authorization: Bearer KEY, or X-Api-Key)", "", "invalid_api_key",
       "authentication_error");
}

// Runs a handler: API errors become their JSON; bad input 400; anything else 500 (our fault).
template <class F>
httplib::Server::Handler guarded(F f) {
  return [f](const httplib::Request& q, httplib::Response& res) {
    try {
      f(q, res);
    } catch (const api::ApiError& e) { send_error(res, e); } catch (const Error& e) {
      api::ApiError a;
      a.status = e.code == ExitCode::bad_input ? 400 : 500;
      a.message = e.what();
      if (a.status == 500) a.type = "server_error";
      send_error(res, a);
    } catch (const std::exception& e) {
      api::ApiError a;
      a.status = 500;
      a.message = std::string("internal error: ") + e.what();
      a.type = "server_error";
      send_error(res, a);
    }
  };
}

Prepared Server::prepare(const httplib::Request& q, bool chat) {
  Prepared p;
  p.req = api::parse_completion(api::parse_object(q.body), chat, model_id_, std::min(16, opt_.max_queue));
  if (chat) {
    if (!tmpl_)
      fail(400, "the model has no chat template: start the server with --chat-template NAME|FILE", "messages");
    p.prompt = tok_->encode(tmpl_->render(p.req.messages, true));
  } else if (p.req.prompt_ids) {
    p.prompt = *p.req.prompt_ids;
  } else {
    p.prompt = tok_->encode(p.req.prompt_text);
  }
  if (p.prompt.empty()) fail(400, "the prompt is empty", chat ? "messages" : "prompt");
  if ((int)p.prompt.size() > opt_.ctx)
    fail(400,
         "the prompt has " + std::to_string(p.prompt.size()) + " tokens, more than the context of " +
             std::to_string(opt_.ctx),
         chat ? "messages" : "prompt", "context_length_exceeded");
  p.id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(++counter_);
  p.created = static_cast<int64_t>(std::time(nullptr));
  return p;
}

// OpenAI's shapes: chat {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob,
// bytes}]}]}; completions {"tokens", "token_logprobs", "top_logprobs": [{token: logprob}]}.
// A token's text is its bytes (invalid UTF-8 reaches JSON as U+FFFD; `bytes` are exact).
json Server::logprobs_json(const std::vector<TokenLogprob>& lps, bool chat, int64_t& offset) const {
  auto text = [this](int32_t id) { return std::string(tok_->token_bytes(id)); };
  auto bytes = [](const std::string& s) {
    json b = json::array();
    for (unsigned char c : s) b.push_back(c);
    return b;
  };
  if (chat) {
    json content = json::array();
    for (const TokenLogprob& lp : lps) {
      json top = json::array();
      for (const auto& [id, l] : lp.top)
        top.push_back({{"token", text(id)}, {"logprob", l}, {"bytes", bytes(text(id))}});
      const std::string t = text(lp.token);
      content.push_back({{"token", t}, {"logprob", lp.logprob}, {"bytes", bytes(t)}, {"top_logprobs", std::move(top)}});
    }
    return {{"content", std::move(content)}};
  }
  json tokens = json::array(), token_logprobs = json::array(), tops = json::array(), offsets = json::array();
  for (const TokenLogprob& lp : lps) {
    // text_offset: characters (code points) of the completion text before the token's first byte;
    // a character split across tokens counts for the token holding its first byte.
    offsets.push_back(offset);
    for (unsigned char c : token_text_(lp.token)) offset += (c & 0xC0) != 0x80;
    tokens.push_back(text(lp.token));
    token_logprobs.push_back(lp.logprob);
    // Keyed by text as JSON will carry it (invalid UTF-8 as U+FFFD): tokens that read the same keep
    // the most likely one's logprob.
    json top = json::object();
    for (const auto& [id, l] : lp.top) {
      const std::string key = json::parse(json(text(id)).dump(-1, ' ', false, json::error_handler_t::replace));
      if (!top.contains(key)) top[key] = l;
    }
    tops.push_back(std::move(top));
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(token_logprobs)},
          {"top_logprobs", std::move(tops)},
          {"text_offset", std::move(offsets)}};
}

json Server::chunk(const Prepared& p, json choices) const {
  return {{"id", p.id},
          {"object", p.req.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", p.created},
          {"model", model_id_},
          {"choices", std::move(choices)}};
}

void Server::complete(const httplib::Request& q, httplib::Response& res, bool chat) {
  require_ready();
  check_auth(q);
  const auto t0 = std::chrono::steady_clock::now();
  auto since = [t0] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  auto p = std::make_shared<Prepared>(prepare(q, chat));
  const api::CompletionRequest& r = p->req;
  auto channel = std::make_shared<Channel>();
  std::vector<Job> jobs;
  const uint64_t seed = r.seed ? *r.seed : seed_base_ + 1000003 * counter_.load();
  for (int i = 0; i < r.n; i++) {
    Job j;
    j.request.prompt = p->prompt;
    j.request.max_new_tokens = r.max_tokens.value_or(opt_.ctx);
    j.request.sampling = r.sampling;
    j.request.seed = seed + i;
    j.request.stop_tokens = chat ? chat_stops_ : eos_stops_;
    j.request.stop_strings = r.stop;
    j.request.max_length = opt_.ctx;
    j.request.logprobs = r.logprobs;
    j.index = i;
    j.channel = channel;
    if (i == 0) SequenceGenerator check(j.request, *engine_, token_text_);  // bad input: 400 now
    jobs.push_back(std::move(j));
  }
  if (!scheduler_->submit(std::move(jobs)))
    fail(503, "the server is busy (the queue is full) or shutting down; retry later", "", "server_busy",
         "server_error");

  if (!r.stream) {
    std::vector<std::string> text(r.n);
    std::vector<ChoiceEvent> ends(r.n);
    std::vector<std::vector<TokenLogprob>> lps(r.n);
    int done = 0;
    double first = -1;
    while (done < r.n)
      for (ChoiceEvent& e : channel->take(std::chrono::milliseconds(100))) {
        if (first < 0 && !e.text.empty()) first = since();
        text[e.index] += e.text;
        lps[e.index].insert(lps[e.index].end(), e.logprobs.begin(), e.logprobs.end());
        if (e.done) ends[e.index] = std::move(e), done++;
      }
    json choices = json::array();
    int completion = 0;
    for (int i = 0; i < r.n; i++) {
      if (!ends[i].error.empty()) fail(500, "generation failed: " + ends[i].error, "", "", "server_error");
      if (ends[i].finish == FinishReason::cancelled)
        fail(503, "the server is shutting down", "", "shutting_down", "server_error");
      completion += ends[i].completion_tokens;
      json c = {{"index", i}, {"finish_reason", openai_finish(ends[i].finish)}, {"logprobs", nullptr}};
      int64_t offset = 0;
      if (r.logprobs >= 0) c["logprobs"] = logprobs_json(lps[i], chat, offset);
      if (chat) c["message"] = {{"role", "assistant"}, {"content", text[i]}};
      else c["text"] = text[i];
      choices.push_back(std::move(c));
    }
    json out = chunk(*p, std::move(choices));
    out["object"] = chat ? "chat.completion" : "text_completion";
    out["usage"] = {{"prompt_tokens", (int)p->prompt.size()},
                    {"completion_tokens", completion},
                    {"total_tokens", (int)p->prompt.size() + completion}};
    const double secs = since();
    metrics_.completion((int)p->prompt.size(), completion, secs, first < 0 ? secs : first);
    send_json(res, 200, out);
    return;
  }
  // Streaming: server-sent events, one per piece of final text, as OpenAI's API sends them.
  struct StreamState {
    bool started = false;
    int done = 0, completion = 0;
    double first = -1;            // seconds to the first text
    std::vector<int64_t> offset;  // per choice: characters before its next token (text_offset)
  };
  auto st = std::make_shared<StreamState>();
  st->offset.assign(r.n, 0);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, p, channel, st, since](size_t, httplib::DataSink& sink) {
        const api::CompletionRequest& r = p->req;
        // The events of this call go out in one write (one chunk): fewer syscalls and client
        // wake-ups when tokens of several choices, or several steps, came at once.
        std::string out;
        auto send = [&out](const json& j) {
          out += "data: ";
          out += j.dump(-1, ' ', false, json::error_handler_t::replace);
          out += "\n\n";
        };
        if (!st->started) {
          st->started = true;
          if (r.chat)
            for (int i = 0; i < r.n; i++)
              send(chunk(*p, json::array({{{"index", i},
                                           {"delta", {{"role", "assistant"}, {"content", ""}}},
                                           {"logprobs", nullptr},
                                           {"finish_reason", nullptr}}})));
        }
        for (ChoiceEvent& e : channel->take(std::chrono::milliseconds(50))) {
          if (!e.text.empty() || !e.logprobs.empty()) {
            if (st->first < 0 && !e.text.empty()) st->first = since();
            json c = {
                {"index", e.index},
                {"finish_reason", nullptr},
                {"logprobs", r.logprobs >= 0 ? logprobs_json(e.logprobs, r.chat, st->offset[e.index]) : json(nullptr)}};
            if (r.chat) c["delta"] = {{"content", e.text}};
            else c["text"] = e.text;
            send(chunk(*p, json::array({c})));
          }
          if (e.done) {
            st->done++;
            st->completion += e.completion_tokens;
            json c = {{"index", e.index}, {"logprobs", nullptr}, {"finish_reason", openai_finish(e.finish)}};
            if (r.chat) c["delta"] = json::object();
            else c["text"] = "";
            send(chunk(*p, json::array({c})));
          }
        }
        const bool last = st->done == r.n;
        if (last) {
          const double secs = since();
          metrics_.completion((int)p->prompt.size(), st->completion, secs, st->first < 0 ? secs : st->first);
          if (r.include_usage) {
            json u = chunk(*p, json::array());
            const int pt = static_cast<int>(p->prompt.size());
            u["usage"] = {
                {"prompt_tokens", pt}, {"completion_tokens", st->completion}, {"total_tokens", pt + st->completion}};
            send(u);
          }
          out += "data: [DONE]\n\n";
        }
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          channel->cancel();  // the client went away: its generation ends at the scheduler's next step
          return false;
        }
        if (last) sink.done();
        return true;
      },
      [channel](bool) { channel->cancel(); });
}

void Server::routes() {
  // The chat page: static, public (it asks for the API key itself).
  http_.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_content(mindllm_chat_html(), "text/html; charset=utf-8");
  });
  // CORS (off by default): every answer carries the allowed origin; a preflight OPTIONS on any
  // path gets 204 with the methods and headers a client of the API sends (no API key needed).
  if (!opt_.cors_origin.empty()) {
    httplib::Headers cors = {{"Access-Control-Allow-Origin", opt_.cors_origin}};
    if (opt_.cors_origin != "*") cors.emplace("Vary", "Origin");
    http_.set_default_headers(cors);
    http_.Options(".*", [](const httplib::Request& q, httplib::Response& res) {
      res.status = 204;
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      // The headers the browser asks for (OpenAI's SDKs send their own x-stainless-* ones).
      const std::string asked = q.get_header_value("Access-Control-Request-Headers");
      res.set_header("Access-Control-Allow-Headers", asked.empty() ? "Authorization, Content-Type, X-Api-Key" : asked);
      res.set_header("Access-Control-Max-Age", "600");
    });
  }
  http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (ready_)
      send_json(res, 200,
                {{"status", "ok"},
                 {"active", scheduler_->active()},
                 {"queued", scheduler_->queued()},
                 {"tokens_generated", scheduler_->tokens_generated()}});
    else send_json(res, 503, {{"status", "loading model"}});
  });
  http_.Get("/metrics", guarded([this](const httplib::Request& q, httplib::Response& res) {
              check_auth(q);
              require_ready();
              res.status = 200;
              res.set_content(metrics_.render(SchedulerStats{
                                  scheduler_->active(), scheduler_->queued(), scheduler_->tokens_generated(),
                                  scheduler_->prefix_tokens_reused(), scheduler_->prefix_cache_hit_tokens()}),
                              "text/plain; version=0.0.4");
            }));
  http_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    send_json(
        res, 200,
        {{"object", "list"},
         {"data", json::array({{{"id", model_id_}, {"object", "model"}, {"created", 0}, {"owned_by", "mindllm"}}})}});
  });
  http_.Post("/v1/chat/completions",
             guarded([this](const httplib::Request& q, httplib::Response& res) { complete(q, res, true); }));
  http_.Post("/v1/completions",
             guarded([this](const httplib::Request& q, httplib::Response& res) { complete(q, res, false); }));
  http_.Post("/tokenize", guarded([this](const httplib::Request& q, httplib::Response& res) {
               check_auth(q);
               const std::string text = api::parse_tokenize(api::parse_object(q.body));
               send_json(res, 200, {{"tokens", tok_->encode(text)}});
             }));
  http_.Post("/detokenize", guarded([this](const httplib::Request& q, httplib::Response& res) {
               check_auth(q);
               const std::vector<TokenId> ids = api::parse_detokenize(api::parse_object(q.body));
               for (TokenId t : ids)
                 if (t < 0 || (size_t)t >= tok_->vocab_size())
                   fail(400, "token id " + std::to_string(t) + " is outside the tokenizer's vocabulary", "tokens");
               send_json(res, 200, {{"content", tok_->decode(ids)}});
             }));
  http_.Post("/apply-template", guarded([this](const httplib::Request& q, httplib::Response& res) {
               check_auth(q);
               const sft::Conversation msgs = api::parse_messages(api::parse_object(q.body));
               if (!tmpl_)
                 fail(400, "the model has no chat template: start the server with --chat-template NAME|FILE",
                      "messages");
               send_json(res, 200, {{"prompt", tmpl_->render(msgs, true)}});
             }));
  // Statuses httplib sets itself (404 unknown route, 413 body too large, ...) get the error shape.
  http_.set_error_handler([this](const httplib::Request& q, httplib::Response& res) {
    if (!res.body.empty()) return;
    api::ApiError e;
    e.status = res.status;
    if (res.status == 404) e.message = "no route " + q.method + " " + q.path, e.code = "not_found";
    else if (res.status == 400) e.message = "malformed HTTP request";
    else if (res.status == 413) e.message = "the request body exceeds " + std::to_string(opt_.max_body) + " bytes";
    else e.message = "HTTP " + std::to_string(res.status);
    res.set_content(api::error_json(e).dump(), "application/json");
  });
  http_.set_logger([this](const httplib::Request& q, const httplib::Response& res) {
    metrics_.request(q.path, res.status);
    log_info("serve: %s %s %s %d %zu", q.remote_addr.c_str(), q.method.c_str(), q.path.c_str(), res.status,
             q.body.size());
  });
}

int Server::run() {
  // Everything cheap to check comes before binding: a bad flag fails at once.
  cfg_ = resolve_model_dir(opt_.model_dir, &weights_);
  tok_ = Tokenizer::load(opt_.tokenizer.empty() ? weights_ : opt_.tokenizer);
  if (!opt_.chat_template.empty()) tmpl_ = sft::ChatTemplate::resolve(opt_.chat_template, weights_);
  else tmpl_ = sft::ChatTemplate::from_model_dir(weights_);
  int32_t eos = cfg_.eos_token_id;
  if (eos < 0 && tok_->eos_id()) eos = static_cast<int32_t>(*tok_->eos_id());
  if (eos >= 0) eos_stops_.push_back(eos);
  if (tmpl_) chat_stops_ = chat_stop_tokens(cfg_, *tok_, *tmpl_);
  else chat_stops_ = eos_stops_;
  token_text_ = [this](int32_t id) {
    return tok_->is_special(id) ? std::string() : std::string(tok_->token_bytes(id));
  };
  model_id_ = std::filesystem::path(opt_.model_dir).lexically_normal().filename().string();
  if (model_id_.empty())
    model_id_ = std::filesystem::path(opt_.model_dir).lexically_normal().parent_path().filename().string();
  if (opt_.ctx == 0) opt_.ctx = cfg_.max_positions > 0 ? cfg_.max_positions : 4096;
  if (opt_.kv_cache) KvCache::check_type(cfg_, *opt_.kv_cache);
  if (opt_.device == Device::cuda && opt_.kv_cache == KvType::q8_0)
    bad_input("--kv-cache q8_0 runs on the CPU only (f32 or bf16 with --device cuda)");

  routes();
  http_.set_payload_max_length(opt_.max_body);
  // Streams are many small writes (a chunk per token): send each at once (no Nagle delay).
  http_.set_tcp_nodelay(true);
  const size_t pool = std::min(opt_.parallel + opt_.max_queue + 8, 256);
  http_.new_task_queue = [pool] { return new httplib::ThreadPool(pool); };
  // Debian's cpp-httplib 0.11 listens with a backlog of 5 (compiled into the library): a burst of
  // connections overflows it and clients wait a 1 s SYN retry. listen() again widens it (Linux).
  int listen_fd = -1;
  http_.set_socket_options([&listen_fd](socket_t fd) {
    httplib::default_socket_options(fd);
    listen_fd = fd;  // the last one tried is the one bound
  });
  if (!http_.bind_to_port(opt_.host, opt_.port))
    bad_input("cannot listen on " + opt_.host + ":" + std::to_string(opt_.port));
  if (listen_fd >= 0) ::listen(listen_fd, 1024);
  std::signal(SIGPIPE, SIG_IGN);
  install_interrupt_handler();
  std::thread listener([this] { http_.listen_after_bind(); });
  log_info("serve: listening on http://%s:%d (loading %s)", opt_.host.c_str(), opt_.port, model_id_.c_str());
  try {
    model_ = std::make_unique<Model>(cfg_);
    load_for_inference(*model_, weights_, opt_.allow_non_finite, host_weights(opt_.weights, opt_.device));
    // Batches of up to one prefill chunk (512) plus a decode token per sequence.
    engine_ = make_engine(*model_, opt_.device, opt_.weights.matmul, 512 + opt_.parallel);
    if (opt_.ctx > engine_->max_length())
      bad_input("--ctx " + std::to_string(opt_.ctx) + " exceeds the model's " + std::to_string(engine_->max_length()) +
                " positions");
    scheduler_ = std::make_unique<Scheduler>(
        *engine_, token_text_,
        SchedulerOptions{opt_.parallel, opt_.max_queue, opt_.ctx, 512, opt_.prefix_cache, opt_.kv_cache});
  } catch (...) {
    http_.stop();
    listener.join();
    throw;
  }
  ready_ = true;
  log_info("serve: ready: %s, %d parallel sequences of up to %d positions", model_id_.c_str(), opt_.parallel, opt_.ctx);
  if (opt_.on_ready)
    opt_.on_ready({{"url", "http://" + opt_.host + ":" + std::to_string(opt_.port)},
                   {"model", model_id_},
                   {"parallel", opt_.parallel},
                   {"ctx", opt_.ctx}});
  while (!interrupted()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  log_info("serve: shutting down");
  scheduler_->stop();  // running generations end (streams get finish_reason "abort")
  http_.stop();
  listener.join();
  const ServeMetrics::Totals t = metrics_.totals();
  if (opt_.on_stop)
    opt_.on_stop({{"responses", t.responses},
                  {"completions", t.completions},
                  {"prompt_tokens", t.prompt_tokens},
                  {"completion_tokens", t.completion_tokens}});
  return 0;
}

}  // namespace

int serve(const ServeOptions& opt) {
  Server s(opt);
  return s.run();
}

}  // namespace mindllm
