#include "report/samples.h"

#include <filesystem>

#include "core/error.h"
#include "model/engine.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/weights_io.h"
#include "serve/generator.h"
#include "tokenizer/tokenizer.h"

namespace mindllm::report {

const std::vector<std::string>& default_prompts() {
  static const std::vector<std::string> p = {"The", "Once upon a time", "床前明月光", "我们"};
  return p;
}

std::vector<Sample> generate_samples(const RunMetrics& run, const SampleOptions& o) {
  std::vector<Sample> out;
  if (o.count <= 0) return out;
  const std::string& ck = run.final_checkpoint;
  if (ck.empty()) return {{run.name, "", "", "", "no checkpoint (ckpt/step-*) in " + run.path}};
  const std::vector<std::string>& prompts = o.prompts.empty() ? default_prompts() : o.prompts;
  try {
    std::string weights;
    ModelConfig cfg = resolve_model_dir(ck, &weights);
    std::string tok_path = (std::filesystem::path(weights) / "tokenizer.json").string();
    if (!std::filesystem::exists(tok_path)) return {{run.name, ck, "", "", "no tokenizer.json in " + weights}};
    Tokenizer tok = Tokenizer::load(tok_path);
    Model model(cfg);
    load_for_inference(model, weights, false, InferenceWeights{});
    int32_t eos = cfg.eos_token_id;
    if (eos < 0 && tok.eos_id()) eos = *tok.eos_id();
    std::vector<GenerationRequest> reqs(o.count);
    for (int i = 0; i < o.count; i++) {
      GenerationRequest& q = reqs[i];
      q.prompt = tok.encode(prompts[i % prompts.size()]);
      if (q.prompt.empty()) return {{run.name, ck, prompts[i % prompts.size()], "", "the prompt encodes to no tokens"}};
      q.max_new_tokens = o.max_new_tokens;
      q.sampling.temperature = o.temperature;
      q.sampling.top_k = o.top_k;
      q.seed = o.seed + i;
      if (eos >= 0) q.stop_tokens.push_back(eos);
    }
    TokenText text = [&](int32_t id) { return tok.is_special(id) ? std::string() : std::string(tok.token_bytes(id)); };
    Engine engine(model);
    KvCache cache(cfg, 16, 0, engine.kv_type());
    std::vector<GenerationResult> res = generate(engine, cache, reqs, text);
    for (int i = 0; i < o.count; i++) out.push_back({run.name, ck, prompts[i % prompts.size()], res[i].text, ""});
  } catch (const Error& e) { return {{run.name, ck, "", "", e.what()}}; }
  return out;
}

}  // namespace mindllm::report
