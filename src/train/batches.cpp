#include "train/batches.h"

#include "core/error.h"
#include "core/hash.h"
#include "core/rng.h"

namespace mindllm {

static void split_window(const std::vector<int32_t>& w, int b, int T, Batch* out) {
  for (int t = 0; t < T; t++) {
    out->inputs[(size_t)b * T + t] = w[t];
    out->targets[(size_t)b * T + t] = w[t + 1];
  }
}

void sample_train_batch(const TokenStream& s, uint64_t seed, int step, int micro, int B, int T, Batch* out) {
  if (s.size() < (uint64_t)T + 1)
    bad_input("training shards hold " + std::to_string(s.size()) + " tokens, fewer than one window of --seq+1 = " +
              std::to_string(T + 1));
  out->inputs.resize((size_t)B * T);
  out->targets.resize((size_t)B * T);
  std::vector<int32_t> w(T + 1);
  uint64_t starts = s.size() - T;  // valid start positions
  for (int b = 0; b < B; b++) {
    Rng rng(mix64(seed, (uint64_t)step, (uint64_t)micro * 1000003ull + b));
    s.copy(rng.below(starts), T + 1, w.data());
    split_window(w, b, T, out);
  }
}

uint64_t num_val_windows(const TokenStream& s, int T) { return s.size() / (uint64_t)(T + 1); }

void val_batch(const TokenStream& s, uint64_t first_window, int B, int T, Batch* out) {
  out->inputs.resize((size_t)B * T);
  out->targets.resize((size_t)B * T);
  std::vector<int32_t> w(T + 1);
  for (int b = 0; b < B; b++) {
    s.copy((first_window + b) * (uint64_t)(T + 1), T + 1, w.data());
    split_window(w, b, T, out);
  }
}

}  // namespace mindllm
