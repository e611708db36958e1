#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mindllm {

float Schedule::at(int step) const {
  if (step < warmup) return lr * static_cast<float>(step + 1) / static_cast<float>(warmup);
  switch (kind) {
    case ScheduleKind::constant: return lr;
    case ScheduleKind::cosine: {
      int span = std::max(1, total - warmup);
      double progress = std::min(1.0, static_cast<double>(step - warmup) / span);
      return static_cast<float>(min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress)));
    }
    case ScheduleKind::wsd: {
      int decay_steps = std::max(1, static_cast<int>(std::lround(decay_fraction * total)));
      int decay_start = std::max(warmup, total - decay_steps);
      if (step < decay_start) return lr;
      double progress = std::min(1.0, static_cast<double>(step - decay_start + 1) / std::max(1, total - decay_start));
      return static_cast<float>(lr + (min_lr - lr) * progress);
    }
  }
  return lr;
}

ScheduleKind parse_schedule(const std::string& name) {
  if (name == "cosine") return ScheduleKind::cosine;
  if (name == "wsd") return ScheduleKind::wsd;
  if (name == "constant") return ScheduleKind::constant;
  bad_input("--schedule " + name + ": expected cosine, wsd or constant");
}

}  // namespace mindllm
