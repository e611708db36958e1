// Generations for the report: a few samples from each run's final checkpoint, on the same
// inference path as `mindllm generate` (serve/generator.h: K/V cache, sampling, EOS stop).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "report/inputs.h"
#include "report/page.h"

namespace mindllm::report {

struct SampleOptions {
  int count = 0;                     // samples per run
  std::vector<std::string> prompts;  // sample i uses prompts[i % size]; empty: default_prompts()
  int max_new_tokens = 48;
  float temperature = 0.8f;
  int top_k = 40;
  uint64_t seed = 0;  // sample i uses seed + i
};

// A few short English and Chinese openings.
const std::vector<std::string>& default_prompts();

// `count` samples from the run's final checkpoint. Never throws for a bad checkpoint: a run without
// one, or one that does not load (no tokenizer, damaged weights), gives one Sample with `error` set.
std::vector<Sample> generate_samples(const RunMetrics& run, const SampleOptions& o);

}  // namespace mindllm::report
