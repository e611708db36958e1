// --quiet and --json, one pair for every command that does long work or ends with a summary:
// --quiet prints no progress line and no log lines (errors still print, on stderr); --json prints
// the command's final summary as one JSON object on stdout instead of its text line (so scripts
// read `mindllm train ... --json | jq .val_loss`). Progress and logs never go to stdout.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace mindllm::cli {

struct OutputFlags {
  bool quiet = false;
  bool json = false;
};

// Adds --quiet (-q) and --json to `app`; --quiet also turns the logger (core/log.h) off.
void add_output_flags(CLI::App& app, OutputFlags& o);

// The final summary: with --json, `summary` with "command" added, as one line on stdout; else
// `text` (one line, newline added) on stderr unless --quiet.
void print_summary(const OutputFlags& o, const std::string& command, const std::string& text, nlohmann::json summary);

}  // namespace mindllm::cli
