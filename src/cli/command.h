// Subcommands: each src/cli/cmd_*.cpp defines one and registers it with MINDLLM_COMMAND.
// main() dispatches on argv[1]; errors thrown as mindllm::Error become one line on stderr and
// the error's exit code (2 for bad input, 1 for internal errors).
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <optional>
#include <vector>

#include "core/types.h"
#include "model/kv_cache.h"
#include "model/weights_io.h"

namespace mindllm::cli {

struct Command {
  std::string name;                   // e.g. "train", or "tokenizer" for a group with its own sub-subcommands
  std::string summary;                // one line for `mindllm --help`
  int (*run)(int argc, char** argv);  // argv[0] is "mindllm <name>"
};

bool register_command(const Command& c);
const std::vector<Command>& commands();

// Parses a CLI11 app; on --help prints help and exits 0, on a bad flag prints one line and exits 2.
void parse_args(CLI::App& app, int argc, char** argv);

// A command group (`mindllm tokenizer train`, `mindllm select score`): runs the sub-command named
// by argv[1] with argv[0] = "<argv[0]> <name>"; none or --help lists them (exit 2 / 0); an unknown
// name is bad input listing the names.
struct SubCommand {
  const char* name;
  int (*run)(int argc, char** argv);
  const char* help;
};
int run_subcommand(int argc, char** argv, const std::vector<SubCommand>& subs);

// --device cpu|cuda into `device` (its value is the default shown).
CLI::Option* add_device_option(CLI::App& app, Device& device, const std::string& help = "cpu | cuda");
// --precision fp32|bf16 into `precision` (Model::set_matmul_precision); the default shown is
// `default_text`, else the current value.
CLI::Option* add_precision_option(CLI::App& app, std::optional<Precision>& precision, const std::string& help,
                                  const std::string& default_text);
CLI::Option* add_precision_option(CLI::App& app, Precision& precision);
// The inference commands' --precision fp32|bf16 and --weights f32|f16|bf16|q8_0|q4_0|q4_k (model/weights_io.h).
void add_inference_weights_options(CLI::App& app, InferenceWeights& how);
// --kv-cache auto|f32|bf16|q8_0 into `kv` (auto: none, the engine's choice, InferenceEngine::kv_type).
CLI::Option* add_kv_cache_option(CLI::App& app, std::optional<KvType>& kv);

}  // namespace mindllm::cli

#define MINDLLM_CONCAT2(a, b) a##b
#define MINDLLM_CONCAT(a, b) MINDLLM_CONCAT2(a, b)
#define MINDLLM_COMMAND(name, summary, fn)                          \
  static const bool MINDLLM_CONCAT(mindllm_registered_, __LINE__) = \
      ::mindllm::cli::register_command({name, summary, fn})
