#include "model/segments.h"

#include <string>

#include "core/error.h"

namespace mindllm {

std::vector<int32_t> segment_starts(const int32_t* positions, int B, int T) {
  std::vector<int32_t> seg((size_t)B * T);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const int32_t p = positions[(size_t)b * T + t];
      const bool ok = p == 0 || (t > 0 && p == positions[(size_t)b * T + t - 1] + 1);
      if (!ok)
        bad_input("position ids: row " + std::to_string(b) + " has position " + std::to_string(p) + " at " +
                  std::to_string(t) + " (expected 0, a new sample, or the previous position + 1)");
      seg[(size_t)b * T + t] = t - p;
    }
  return seg;
}

}  // namespace mindllm
