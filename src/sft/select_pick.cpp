#include "sft/select_pick.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace mindllm::sft {

std::string stratum_of(const ScoreRecord& r, const PickOptions& o) {
  if (o.by_source && o.by_lang) return r.source + "|" + r.lang;
  if (o.by_source) return r.source;
  if (o.by_lang) return r.lang;
  return "";
}

namespace {

struct Candidate {
  double pref = 0;
  bool eligible = true;
};

// Preference and eligibility of every record of one stratum (`members`: record indices).
void rank_stratum(const std::vector<ScoreRecord>& recs, const std::vector<size_t>& members, const PickOptions& o,
                  std::vector<Candidate>& c) {
  const double mid = (o.lo + o.hi) / 2;
  const size_t n = members.size();
  switch (o.strategy) {
    case Strategy::band_percentile: {
      std::vector<size_t> order = members;
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return recs[a].score < recs[b].score; });
      for (size_t r = 0; r < n; r++) {
        const double pct = n == 1 ? 50.0 : 100.0 * (double)r / (double)(n - 1);
        c[order[r]] = {std::fabs(pct - mid), pct >= o.lo - 1e-9 && pct <= o.hi + 1e-9};
      }
      break;
    }
    case Strategy::band_z: {
      double mean = 0, var = 0;
      for (size_t i : members) mean += recs[i].score;
      mean /= (double)n;
      for (size_t i : members) var += (recs[i].score - mean) * (recs[i].score - mean);
      const double sd = std::sqrt(var / (double)n);
      for (size_t i : members) {
        const double z = sd > 0 ? (recs[i].score - mean) / sd : 0.0;
        c[i] = {std::fabs(z - mid), z >= o.lo && z <= o.hi};
      }
      break;
    }
    case Strategy::target:
      for (size_t i : members) c[i] = {std::fabs(recs[i].score - o.target), true};
      break;
    case Strategy::top:
      for (size_t i : members) c[i] = {-recs[i].score, true};
      break;
    case Strategy::bottom:
      for (size_t i : members) c[i] = {recs[i].score, true};
      break;
    case Strategy::random: break;  // set over the whole pool in pick()
  }
}

// Integer shares of `total` in proportion to `weights` (largest remainders; ties to the first).
std::vector<double> apportion(double total, const std::vector<double>& weights, bool integral) {
  const double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<double> out(weights.size(), 0.0);
  if (sum <= 0) return out;
  if (!integral) {
    for (size_t i = 0; i < weights.size(); i++) out[i] = std::floor(total * weights[i] / sum);
    return out;
  }
  std::vector<std::pair<double, size_t>> rem;
  double given = 0;
  for (size_t i = 0; i < weights.size(); i++) {
    const double exact = total * weights[i] / sum;
    out[i] = std::floor(exact);
    given += out[i];
    rem.push_back({exact - out[i], i});
  }
  std::stable_sort(rem.begin(), rem.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t k = 0; k < rem.size() && given < total; k++, given++) out[rem[k].second] += 1;
  return out;
}

}  // namespace

PickResult pick(const std::vector<ScoreRecord>& recs, const PickOptions& o, const std::function<bool(size_t)>& accept) {
  PickResult res;
  const size_t n = recs.size();
  std::vector<Candidate> cand(n);
  // Strata, named in sorted order.
  std::map<std::string, std::vector<size_t>> strata;
  for (size_t i = 0; i < n; i++) strata[stratum_of(recs[i], o)].push_back(i);
  for (auto& [name, members] : strata) rank_stratum(recs, members, o, cand);
  if (o.strategy == Strategy::random) {
    std::vector<size_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    Rng rng(o.seed);
    for (size_t i = n; i > 1; i--) std::swap(perm[i - 1], perm[rng.below(i)]);
    for (size_t r = 0; r < n; r++) cand[perm[r]] = {(double)r, true};
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cand[a].pref < cand[b].pref; });
  for (const Candidate& c : cand) res.eligible += c.eligible;

  const bool tokens = o.token_budget >= 0;
  const bool limited = tokens || o.size >= 0;
  const double total = tokens ? (double)o.token_budget : limited ? (double)o.size : (double)res.eligible;
  auto weight = [&](size_t i) { return tokens ? (double)recs[i].seq_tokens : 1.0; };
  std::vector<char> kept(n, 0);
  double used = 0;
  // Takes up to `amount` from the eligible, not yet kept records that `in` allows, in preference order.
  auto fill = [&](const std::string& name, double amount, auto&& in) {
    Quota q{name, amount, 0};
    for (size_t i : order) {
      if (q.got >= amount) break;
      if (kept[i] || !cand[i].eligible || !in(i)) continue;
      if (q.got + weight(i) > amount) {
        if (tokens) continue;  // a shorter sample may still fit
        break;
      }
      if (accept && !accept(i)) {
        res.refused++;
        continue;
      }
      kept[i] = 1;
      q.got += weight(i);
    }
    used += q.got;
    res.quotas.push_back(q);
  };
  for (const auto& [tag, share] : o.tag_shares) {
    const double amount = tokens ? std::floor(share * total) : std::round(share * total);
    fill("tag:" + tag, amount,
         [&](size_t i) { return std::find(recs[i].tags.begin(), recs[i].tags.end(), tag) != recs[i].tags.end(); });
  }
  const double rest = std::max(0.0, total - used);
  if (strata.size() > 1 && limited) {
    // Each stratum's share of the whole amount, less what the tag quotas already took from it.
    std::vector<double> w;
    for (auto& [name, members] : strata) {
      double s = 0;
      for (size_t i : members) s += weight(i);
      w.push_back(s);
    }
    const std::vector<double> share = apportion(total, w, !tokens);
    std::vector<double> want;
    size_t k = 0;
    for (auto& [name, members] : strata) {
      double have = 0;
      for (size_t i : members) have += kept[i] ? weight(i) : 0.0;
      want.push_back(std::max(0.0, share[k++] - have));
    }
    // A stratum whose tag quotas took more than its share leaves the others less than they want:
    // what is left is divided over them in proportion to what each still wants.
    if (std::accumulate(want.begin(), want.end(), 0.0) > rest) want = apportion(rest, want, !tokens);
    k = 0;
    for (auto& [name, members] : strata) {
      const std::string& stratum = name;
      fill("stratum:" + name, want[k++], [&](size_t i) { return stratum_of(recs[i], o) == stratum; });
    }
  } else {
    fill("all", rest, [](size_t) { return true; });
  }
  for (size_t i = 0; i < n; i++)
    if (kept[i]) res.kept.push_back(i);
  return res;
}

std::pair<double, double> parse_band(const std::string& s, const std::string& flag, double lo_min, double hi_max) {
  const size_t colon = s.find(':');
  auto number = [&](const std::string& t, double* v) {
    char* end = nullptr;
    *v = std::strtod(t.c_str(), &end);
    return !t.empty() && end == t.c_str() + t.size() && std::isfinite(*v);
  };
  double lo = 0, hi = 0;
  if (colon == std::string::npos || !number(s.substr(0, colon), &lo) || !number(s.substr(colon + 1), &hi) || lo > hi ||
      lo < lo_min || hi > hi_max)
    bad_input(
        flag + " " + s + ": expected LO:HI, two numbers with LO <= HI" +
        (lo_min > -1e300 ? " within [" + std::to_string((int)lo_min) + ", " + std::to_string((int)hi_max) + "]" : ""));
  return {lo, hi};
}

std::vector<std::pair<std::string, double>> parse_tag_shares(const std::string& s) {
  std::vector<std::pair<std::string, double>> out;
  double sum = 0;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? s.size() + 1 : comma + 1;
    const size_t eq = item.find('=');
    char* end = nullptr;
    const std::string v = eq == std::string::npos ? "" : item.substr(eq + 1);
    const double share = std::strtod(v.c_str(), &end);
    if (eq == std::string::npos || eq == 0 || v.empty() || end != v.c_str() + v.size() || !std::isfinite(share) ||
        share <= 0 || share > 1)
      bad_input("--tag-share " + item + ": expected TAG=SHARE with 0 < SHARE <= 1");
    for (auto& [t, x] : out)
      if (t == item.substr(0, eq)) bad_input("--tag-share: tag '" + t + "' given twice");
    out.push_back({item.substr(0, eq), share});
    sum += share;
  }
  if (sum > 1 + 1e-9) bad_input("--tag-share " + s + ": the shares add up to more than 1");
  return out;
}

}  // namespace mindllm::sft
