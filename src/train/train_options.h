// The options of a training run (TrainOptions, train/trainer.h): checked, written into
// checkpoints, compared across the ranks of a data-parallel job.
#pragma once
#include <nlohmann/json.hpp>

#include "train/batches.h"
#include "train/trainer.h"

namespace mindllm {

// The effective --precision: bf16 mixed precision on a GPU unless asked otherwise, fp32 on the CPU
// (where bf16 means bf16 matrix multiplies with fp32 accumulation, on CPUs with AMX/AVX512-BF16).
inline Precision precision_of(const TrainOptions& o) {
  return o.precision ? *o.precision : o.device == Device::cuda ? Precision::bf16 : Precision::fp32;
}

// Bad input (one line naming the flag) for options out of range or unavailable on this machine.
void check_options(const TrainOptions& o);

// The options stored in trainer_state.json ("args").
nlohmann::json options_json(const TrainOptions& o);

// What every rank of a data-parallel job must agree on, named as the user would name it: the
// options (not --threads, nor paths, which may differ between hosts), the model config, the data
// manifest and the tokenizer (dist/consistency.h).
nlohmann::json rank_fingerprint(const TrainOptions& o, const TrainModel& tm, const BatchSource& data);

}  // namespace mindllm
