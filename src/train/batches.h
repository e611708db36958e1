// Training and validation windows over token shards.
// Training: each row of each micro-batch is a window of T+1 tokens starting at a position drawn
// from a stream seeded by (seed, step, row): the data order depends only on the seed and the
// step, so a resumed run reads exactly what an uninterrupted one would.
// Validation: the first `batches` x B consecutive, non-overlapping windows of T+1 tokens from the
// start of the val shards, in file order.
#pragma once
#include <cstdint>
#include <vector>

#include "data/shard.h"

namespace mindllm {

struct Batch {
  std::vector<int32_t> inputs, targets;  // B*T each
};

// Fills batch rows for (step, micro) of a run with `grad_accum` micro-batches per step.
void sample_train_batch(const TokenStream& s, uint64_t seed, int step, int micro, int B, int T, Batch* out);

// Validation window i (0-based): tokens [i*(T+1), (i+1)*(T+1)).
uint64_t num_val_windows(const TokenStream& s, int T);
void val_batch(const TokenStream& s, uint64_t first_window, int B, int T, Batch* out);

}  // namespace mindllm
