// mindllm: one binary, one subcommand per src/cli/cmd_*.cpp.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/linear_bf16.h"
#include "dist/communicator.h"
#include "train/dist/nccl.h"
#include "model/weights_io.h"
#ifdef MINDLLM_CUDA
#include "kernels/cuda/cudnn_attention.h"
#include "kernels/cuda/device.h"
#endif

namespace mindllm::cli {

static std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}

bool register_command(const Command& c) {
  registry().push_back(c);
  return true;
}

const std::vector<Command>& commands() {
  auto& r = registry();
  std::sort(r.begin(), r.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  return r;
}

CLI::Option* add_device_option(CLI::App& app, Device& device, const std::string& help) {
  return app
      .add_option_function<std::string>(
          "--device", [&device](const std::string& v) { device = *device_from_name(v); }, help)
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->default_str(name(device));
}

CLI::Option* add_precision_option(CLI::App& app, std::optional<Precision>& precision, const std::string& help,
                                  const std::string& default_text) {
  return app
      .add_option_function<std::string>(
          "--precision", [&precision](const std::string& v) { precision = *precision_from_name(v); }, help)
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->default_str(default_text);
}

CLI::Option* add_precision_option(CLI::App& app, Precision& precision) {
  return app
      .add_option_function<std::string>(
          "--precision", [&precision](const std::string& v) { precision = *precision_from_name(v); },
          "matrix multiplies: fp32, or bf16 operands with fp32 accumulation (faster on CPUs with AMX; results "
          "move within bf16 precision)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->default_str(name(precision));
}

void add_inference_weights_options(CLI::App& app, InferenceWeights& how) {
  CLI::Option* prec = add_precision_option(app, how.matmul);
  app.add_option_function<std::string>(
         "--weights",
         [&how](const std::string& v) {
           how.override_weights = true;
           how.weights = weights_type_from_name(v);
         },
         "inference weights: f32, f16, bf16, q8_0, q4_0 or q4_k (int8 / int4 blocks, llama.cpp's formats); default: "
         "the model's own (a directory made by mindllm quantize, a GGUF file's tensors; else f32)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k"}))
      ->excludes(prec);
}

CLI::Option* add_kv_cache_option(CLI::App& app, std::optional<KvType>& kv) {
  return app
      .add_option_function<std::string>(
          "--kv-cache", [&kv](const std::string& v) { kv = v == "auto" ? std::nullopt : kv_type_from_name(v); },
          "K/V cache element type: auto (bf16 for quantised or bf16 weights, else f32), f32, bf16 or q8_0 "
          "(int8 blocks of 32 as llama.cpp's; head sizes that are multiples of 32)")
      ->check(CLI::IsMember({"auto", "f32", "bf16", "q8_0"}))
      ->default_str("auto");
}

int run_subcommand(int argc, char** argv, const std::vector<SubCommand>& subs) {
  std::string names;
  int width = 0;
  for (const SubCommand& s : subs) {
    names += (names.empty() ? "" : ", ") + std::string(s.name);
    width = std::max(width, (int)std::strlen(s.name));
  }
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::printf("usage: %s <command> [options]   (%s <command> --help)\n\ncommands:\n", argv[0], argv[0]);
    for (const SubCommand& s : subs) std::printf("  %-*s  %s\n", width, s.name, s.help);
    return argc < 2 ? 2 : 0;
  }
  for (const SubCommand& s : subs) {
    if (s.name != std::string(argv[1])) continue;
    std::string name = std::string(argv[0]) + " " + argv[1];
    std::vector<char*> args{name.data()};
    for (int i = 2; i < argc; i++) args.push_back(argv[i]);
    return s.run(static_cast<int>(args.size()), args.data());
  }
  bad_input(std::string("unknown command '") + argv[0] + " " + argv[1] + "' (" + names + ")");
}

void parse_args(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::cout << app.help();
    std::exit(0);
  } catch (const CLI::CallForAllHelp& e) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    std::exit(0);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: error: %s (see --help)\n", app.get_name().c_str(), e.what());
    std::exit(2);
  }
}

static std::string build_info() {
  std::string s = std::string("mindllm ") + MINDLLM_VERSION + " (" + MINDLLM_BUILD_TYPE + "; ";
#ifdef MINDLLM_CUDA
  s += "cuda on; ";
#else
  s += "cuda off; ";
#endif
#ifdef MINDLLM_NATIVE
  s += "march=native; ";
#else
  s += "portable; ";
#endif
  s += std::string("openmp; ") + mindllm::cpu::blas_info() + ")";
  return s;
}

// Not enough memory for what was asked: one line and exit code 2, as for other input the machine
// cannot take.
static int out_of_memory(const std::string& name, const std::exception& e) {
  std::fprintf(stderr, "%s: error: out of memory: %s (a smaller --batch, --seq or model needs less)\n", name.c_str(),
               e.what());
  return 2;
}

static void usage() {
  std::printf("%s\n\nusage: mindllm <command> [options]   (mindllm <command> --help for its options)\n\ncommands:\n",
              build_info().c_str());
  for (auto& c : commands()) std::printf("  %-12s %s\n", c.name.c_str(), c.summary.c_str());
}

}  // namespace mindllm::cli

int main(int argc, char** argv) {
  using namespace mindllm::cli;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    usage();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::string bf16;
    bool ok = mindllm::cpu::bf16_gemm_available(&bf16);
    std::printf("%s\nbf16 matmul (--precision bf16): %s%s\n", build_info().c_str(),
                ok ? "" : "unavailable: ", bf16.c_str());
    std::printf("data parallel (mpirun -np N): %s\n", mindllm::dist::built_with_mpi()
                                                          ? (mindllm::dist::built_with_nccl() ? "MPI, NCCL" : "MPI")
                                                          : "unavailable: built without MPI");
#ifdef MINDLLM_CUDA
    std::string cudnn;
    ok = mindllm::cuda::cudnn_attention_available(&cudnn);
    std::printf("gpu (--device cuda): %s\ncuDNN attention (--attention cudnn): %s%s\n",
                mindllm::cuda::device_description().c_str(), ok ? "available" : "unavailable: ", cudnn.c_str());
#endif
    return 0;
  }
  for (auto& c : commands()) {
    if (c.name != argv[1]) continue;
    std::string name = std::string("mindllm ") + argv[1];
    std::vector<char*> args;
    args.push_back(name.data());
    for (int i = 2; i < argc; i++) args.push_back(argv[i]);
    try {
      return c.run(static_cast<int>(args.size()), args.data());
    } catch (const mindllm::Error& e) {
      mindllm::clear_progress_line();
      std::fprintf(stderr, "%s: error: %s\n", name.c_str(), e.what());
      return static_cast<int>(e.code);
    } catch (const std::bad_alloc& e) {  // also from OpenMP threads (kernels/cpu/omp_trap.h)
      return out_of_memory(name, e);
    } catch (const std::length_error& e) {  // a buffer larger than the address space
      return out_of_memory(name, e);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: internal error: %s\n", name.c_str(), e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "mindllm: error: unknown command '%s' (see mindllm --help)\n", argv[1]);
  return 2;
}
