#include "cli/output.h"

#include <cstdio>

#include "core/log.h"

namespace mindllm::cli {

void add_output_flags(CLI::App& app, OutputFlags& o) {
  app.add_flag_callback(
      "--quiet,-q",
      [&o] {
        o.quiet = true;
        set_log_enabled(false);
      },
      "no progress line and no log lines (errors still print)");
  app.add_flag("--json", o.json, "print the final summary as one JSON object on stdout instead of text");
}

void print_summary(const OutputFlags& o, const std::string& command, const std::string& text, nlohmann::json summary) {
  if (o.json) {
    summary["command"] = command;
    std::string line = summary.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::fputs(line.c_str(), stdout);
    std::fflush(stdout);
  } else if (!o.quiet) {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
}

}  // namespace mindllm::cli
