// Packed sequences (sft --packing): several samples share one row of a batch, each with positions
// restarting at 0 and attention confined to itself. A batch says so by its position ids
// ([B*T], row-major); the attention kernels take the equivalent first position of each row's
// segment (kernels/cpu/attention.h, AttentionShape::seg_start).
#pragma once
#include <cstdint>
#include <vector>

namespace mindllm {

// seg_start[b*T + t] = t - positions[b*T + t], after checking that each row is a run of
// segments 0, 1, 2, ...: positions[b*T] == 0 and each next position is 0 (a new segment) or the
// previous + 1. Anything else is bad input naming the row and position.
std::vector<int32_t> segment_starts(const int32_t* positions, int B, int T);

}  // namespace mindllm
