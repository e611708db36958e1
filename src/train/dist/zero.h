// ZeRO-1 (Rajbhandari et al., 2020, stage 1) on the CPU: the AdamW moments are sharded across the
// ranks of a data-parallel job, one contiguous slice of the flat buffer per rank (even_slices).
// A step: reduce-scatter of the gradients in the buckets of dist/overlap.h, during the backward
// or after it (each rank gets the sum of its slice), the global
// gradient norm from the slices, the AdamW update of the rank's slice, an all-gather of the
// weights. The same bytes as an all-reduce; per-rank optimizer memory 1/N. Checkpoints hold the
// whole state (gathered on rank 0), so any rank count, with or without --zero, resumes them.
#pragma once
#include <vector>

#include "dist/communicator.h"
#include "train/optimizer.h"

namespace mindllm::dist {

// The L2 norm of the whole gradient from every rank's summed slice (collective).
double sliced_norm(Communicator& c, const std::vector<float>& grads, const Slices& s);
// Rank 0's full optimizer state becomes every rank's slice of it (optim.shard).
void shard_optimizer(Communicator& c, AdamW& optim);
// The full moments on rank 0 (m, v untouched elsewhere), from every rank's slice.
void gather_optimizer(Communicator& c, const AdamW& optim, size_t total, std::vector<float>* m, std::vector<float>* v);

}  // namespace mindllm::dist
