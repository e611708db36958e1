#include "dist/consistency.h"

#include <algorithm>

#include "core/hash.h"

namespace mindllm::dist {

namespace {

std::string shown(const nlohmann::json& v) {
  std::string s = v.is_null() ? "absent" : v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// The first field (in rank 0's order, then this rank's extra ones) whose value differs; "" if none.
std::string first_difference(const nlohmann::json& mine, const nlohmann::json& ref, int rank) {
  auto line = [&](const std::string& key) {
    return "rank " + std::to_string(rank) + ": " + key + " is " + shown(mine.value(key, nlohmann::json())) +
           " here but " + shown(ref.value(key, nlohmann::json())) + " on rank 0 (every rank must run the same command)";
  };
  for (const auto& [key, value] : ref.items())
    if (!mine.contains(key) || mine[key] != value) return line(key);
  for (const auto& [key, value] : mine.items())
    if (!ref.contains(key)) return line(key);
  return "";
}

}  // namespace

void check_same_on_all_ranks(Communicator& c, const nlohmann::json& fields) {
  if (c.size() == 1) return;
  std::string text = c.rank() == 0 ? fields.dump() : "";
  broadcast(c, text, 0);
  const std::string diff = c.rank() == 0 ? "" : first_difference(fields, nlohmann::json::parse(text), c.rank());
  const std::vector<double> differs = all_gather(c, diff.empty() ? 0.0 : 1.0);
  for (int r = 0; r < c.size(); r++)
    if (differs[r] != 0.0) throw CollectiveError(ExitCode::bad_input, r == c.rank() ? diff : "", r == c.rank());
}

void check_replicas_agree(Communicator& c, std::span<const float> params, const std::string& when) {
  if (c.size() == 1) return;
  constexpr size_t kChunk = size_t(1) << 18;
  const int64_t chunks = static_cast<int64_t>((params.size() + kChunk - 1) / kChunk);
  std::vector<uint64_t> h(chunks);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < chunks; i++) {
    size_t n = std::min(kChunk, params.size() - i * kChunk);
    h[i] = fnv1a64({reinterpret_cast<const char*>(params.data() + i * kChunk), n * sizeof(float)});
  }
  uint64_t all = 0;
  for (uint64_t x : h) all = mix64(all, x);
  const std::vector<double> hashes = all_gather(c, static_cast<double>(all >> 12));  // 52 bits: exact in a double
  for (int r = 1; r < c.size(); r++)
    if (hashes[r] != hashes[0])
      throw CollectiveError(ExitCode::internal, "rank " + std::to_string(r) + "'s weights differ from rank 0's " + when,
                            c.rank() == 0);
}

}  // namespace mindllm::dist
