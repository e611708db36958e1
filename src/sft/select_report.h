// The report of `mindllm select pick`: report.json (counts per source, language, tag and quota,
// score statistics and histograms of the pool and of what was kept) and report.html (the same,
// self-contained, with inline SVG histograms per source and per tag).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sft/select_pick.h"

namespace mindllm::sft {

// Statistics of a list of scores: count, mean, sd, min, p25, median, p75, max (nulls when empty).
nlohmann::json score_stats(std::vector<double> scores);

// `settings`: the strategy and flags as given; `counts`: what the command dropped on the way
// (invalid scores, unknown ids, near duplicates, ...). bins: histogram bins over the pool's range.
nlohmann::json pick_report(const std::vector<ScoreRecord>& records, const PickResult& result,
                           const nlohmann::json& settings, const nlohmann::json& counts, int bins = 30);
std::string pick_report_html(const nlohmann::json& report);

}  // namespace mindllm::sft
