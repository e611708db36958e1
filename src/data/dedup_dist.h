// Deduplication across the ranks of a job (`mpirun -np N mindllm data prepare`), deciding what one
// process decides in input order (prepare.cpp): a document is an exact duplicate when an earlier
// document had its exact hash, else a near duplicate when a band key of it equals that band's key
// of an earlier *kept* document (LshIndex).
//
// Each rank holds its own "candidates" (the documents the filters kept), numbered in global input
// order: rank r's are [first[r], first[r+1]).
//   exact: (hash, number) to rank hash mod N (MPI_Alltoallv); that owner keeps the lowest number
//          of each hash and sends the others back as removed.
//   near:  (band, key, number) of the candidates left to rank key mod N, which groups equal keys.
//          The rule chains across keys held by different owners (A ~ B in one band, B ~ C in
//          another: B is removed, so C is kept), so no owner can decide alone: the owners send
//          rank 0 only the groups of two or more (a key seen once, nearly all of them, stays with
//          its owner); rank 0 walks the grouped documents in input order, and a document is
//          removed when a group of it already holds a kept one. The removals go back.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace mindllm::dist {
class Communicator;
}

namespace mindllm::data {

enum class Verdict : uint8_t { kept = 0, exact_duplicate = 1, near_duplicate = 2 };

struct DedupAcrossRanks {
  std::vector<Verdict> verdict;  // per candidate of this rank
  uint64_t distinct_hashes = 0;  // over the job (one process's exact index entries)
  uint64_t keys_exchanged = 0;   // band keys the owners received, over the job
};

struct DedupInput {
  uint64_t candidates = 0;              // on this rank
  bool exact = true, near = true;       // which steps run (the same on every rank)
  std::span<const uint64_t> hashes;     // exact: one per candidate (exact_text_hash)
  std::span<const uint64_t> band_keys;  // near: `bands` per candidate (LshIndex::band_key)
  int bands = 0;
};

// Collective.
DedupAcrossRanks dedup_across_ranks(dist::Communicator& c, const DedupInput& in);

}  // namespace mindllm::data
