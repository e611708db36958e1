// Learning-rate schedules: linear warmup, then cosine decay to min_lr, WSD (warmup-stable-decay:
// constant, then a linear decay over the last `decay_fraction` of the steps), or constant.
#pragma once
#include <string>

namespace mindllm {

enum class ScheduleKind { cosine, wsd, constant };

struct Schedule {
  ScheduleKind kind = ScheduleKind::cosine;
  float lr = 3e-4f, min_lr = 0.0f;
  int warmup = 0, total = 1;
  float decay_fraction = 0.2f;  // wsd only

  // Learning rate for the 0-based step.
  float at(int step) const;
};

ScheduleKind parse_schedule(const std::string& name);  // bad input for an unknown name

}  // namespace mindllm
