// The start of a data-parallel job: every rank must train with the same options, model and data.
#pragma once
#include <nlohmann/json.hpp>

#include "dist/communicator.h"

namespace mindllm::dist {

// `fields` maps what a user would name (a flag such as "--lr", "the model config (--model)") to
// this rank's value. Rank 0 broadcasts its fields; the lowest rank whose fields differ stops the
// job: every rank throws CollectiveError(bad_input), that rank's naming the first differing field
// ("rank 1: --lr is 0.002 here but 0.001 on rank 0"), the others' quiet. Collective.
void check_same_on_all_ranks(Communicator& c, const nlohmann::json& fields);

}  // namespace mindllm::dist

namespace mindllm::dist {

// Every rank holds the same weights (data parallelism keeps replicas identical bit for bit): a
// hash of `params` compared across ranks; a difference is an internal error naming the rank and
// `when`, raised on every rank. Collective.
void check_replicas_agree(Communicator& c, std::span<const float> params, const std::string& when);

}  // namespace mindllm::dist
