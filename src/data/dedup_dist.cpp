#include "data/dedup_dist.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <tuple>

#include "core/error.h"
#include "dist/communicator.h"

namespace mindllm::data {

namespace {

using dist::Communicator;

struct Numbering {
  std::vector<uint64_t> first;  // rank r's candidates are [first[r], first[r+1])
  int rank_of(uint64_t n) const {
    return static_cast<int>(std::upper_bound(first.begin(), first.end(), n) - first.begin()) - 1;
  }
};

// The numbers the other ranks send back get `why` on this rank's candidates.
void mark(Communicator& c, const std::vector<std::string>& back, const Numbering& num, std::vector<Verdict>& verdict,
          Verdict why) {
  for (auto& from : c.all_to_all(back))
    for (uint64_t n : dist::bytes_as<uint64_t>(from)) verdict.at(n - num.first[c.rank()]) = why;
}

uint64_t exact_step(Communicator& c, std::span<const uint64_t> exact, const Numbering& num,
                    std::vector<Verdict>& verdict) {
  const size_t N = static_cast<size_t>(c.size());
  std::vector<std::string> out(N);
  for (uint64_t i = 0; i < exact.size(); i++) {
    std::string& to = out[exact[i] % N];
    dist::append_bytes(to, exact[i]), dist::append_bytes(to, num.first[c.rank()] + i);
  }
  std::vector<std::pair<uint64_t, uint64_t>> owned;  // (hash, number)
  for (auto& from : c.all_to_all(out)) {
    std::vector<uint64_t> v = dist::bytes_as<uint64_t>(from);
    for (size_t k = 0; k + 1 < v.size(); k += 2) owned.emplace_back(v[k], v[k + 1]);
  }
  std::sort(owned.begin(), owned.end());
  std::vector<std::string> back(N);
  uint64_t distinct = 0;
  for (size_t k = 0; k < owned.size(); k++) {
    if (k == 0 || owned[k].first != owned[k - 1].first) distinct++;
    else dist::append_bytes(back[num.rank_of(owned[k].second)], owned[k].second);  // a later copy
  }
  mark(c, back, num, verdict, Verdict::exact_duplicate);
  return distinct;
}

struct KeyAt {
  uint64_t band, key, number;
  bool operator<(const KeyAt& o) const { return std::tie(band, key, number) < std::tie(o.band, o.key, o.number); }
};

// Rank 0: the groups ([count, numbers...] each) in input order; returns the removed numbers.
std::vector<uint64_t> near_duplicates_in_groups(const std::vector<std::string>& from_owners) {
  std::vector<std::pair<uint64_t, uint64_t>> member;  // (number, group)
  uint64_t groups = 0;
  for (auto& bytes : from_owners) {
    std::vector<uint64_t> v = dist::bytes_as<uint64_t>(bytes);
    for (size_t k = 0; k < v.size(); k += 1 + v[k], groups++)
      for (uint64_t m = 0; m < v[k]; m++) member.emplace_back(v[k + 1 + m], groups);
  }
  std::sort(member.begin(), member.end());
  std::vector<char> holds_kept(groups, 0);
  std::vector<uint64_t> removed;
  for (size_t k = 0; k < member.size();) {
    size_t e = k;
    bool dup = false;
    for (; e < member.size() && member[e].first == member[k].first; e++) dup = dup || holds_kept[member[e].second];
    if (dup) removed.push_back(member[k].first);
    else
      for (size_t m = k; m < e; m++) holds_kept[member[m].second] = 1;
    k = e;
  }
  return removed;
}

uint64_t near_step(Communicator& c, std::span<const uint64_t> band_keys, int bands, const Numbering& num,
                   std::vector<Verdict>& verdict) {
  const size_t N = static_cast<size_t>(c.size());
  std::vector<std::string> out(N);
  for (uint64_t i = 0; i < verdict.size(); i++) {
    if (verdict[i] != Verdict::kept) continue;  // an exact duplicate is neither looked up nor indexed
    for (int b = 0; b < bands; b++) {
      const uint64_t key = band_keys[i * bands + b];
      dist::append_bytes(out[key % N], KeyAt{static_cast<uint64_t>(b), key, num.first[c.rank()] + i});
    }
  }
  std::vector<KeyAt> owned;
  for (auto& from : c.all_to_all(out)) {
    std::vector<KeyAt> v = dist::bytes_as<KeyAt>(from);
    owned.insert(owned.end(), v.begin(), v.end());
  }
  std::sort(owned.begin(), owned.end());
  std::vector<std::string> groups(N);  // all to rank 0
  for (size_t k = 0; k < owned.size();) {
    size_t e = k + 1;
    while (e < owned.size() && owned[e].band == owned[k].band && owned[e].key == owned[k].key) e++;
    if (e - k > 1) {
      dist::append_bytes(groups[0], static_cast<uint64_t>(e - k));
      for (size_t m = k; m < e; m++) dist::append_bytes(groups[0], owned[m].number);
    }
    k = e;
  }
  std::vector<std::string> from_owners = c.all_to_all(groups);
  std::vector<std::string> back(N);
  if (c.rank() == 0)
    for (uint64_t n : near_duplicates_in_groups(from_owners)) dist::append_bytes(back[num.rank_of(n)], n);
  mark(c, back, num, verdict, Verdict::near_duplicate);
  return owned.size();
}

}  // namespace

DedupAcrossRanks dedup_across_ranks(dist::Communicator& c, const DedupInput& in) {
  MINDLLM_CHECK((!in.exact || in.hashes.size() == in.candidates) &&
                    (!in.near || in.band_keys.size() == in.candidates * static_cast<uint64_t>(in.bands)),
                "dedup_across_ranks: one hash and `bands` keys per candidate");
  Numbering num{{0}};
  for (double n : dist::all_gather(c, static_cast<double>(in.candidates)))
    num.first.push_back(num.first.back() + static_cast<uint64_t>(n));
  DedupAcrossRanks r;
  r.verdict.assign(in.candidates, Verdict::kept);
  double sums[2] = {0, 0};
  if (in.exact) sums[0] = static_cast<double>(exact_step(c, in.hashes, num, r.verdict));
  if (in.near) sums[1] = static_cast<double>(near_step(c, in.band_keys, in.bands, num, r.verdict));
  c.allreduce_sum(std::span<double>(sums));
  r.distinct_hashes = static_cast<uint64_t>(sums[0]);
  r.keys_exchanged = static_cast<uint64_t>(sums[1]);
  return r;
}

}  // namespace mindllm::data
