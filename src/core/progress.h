// One progress line for long-running commands (data prepare/tokenize, tokenizer train, eval):
// on a terminal the line is redrawn in place at most 4 times a second; in a log (stderr not a
// terminal) a plain line is written every 10 seconds. update() shows "label: <done>/<total>
// <unit> (p%), <rate> <unit>/s, ETA m:ss, <extra>"; note() shows free text under the same
// rate limit. Nothing is printed when disabled (--quiet).
#pragma once
#include <chrono>
#include <string>

namespace mindllm {

class Progress {
 public:
  // total <= 0: unknown (no percentage or ETA). `unit` names what done/total count ("MB", "items").
  Progress(std::string label, double total, std::string unit, bool enabled = true);
  void update(double done, const std::string& extra = "");
  void finish(double done, const std::string& extra = "");  // always shown; ends the line
  void note(const std::string& text, bool force = false);   // free text under the rate limit
  void end();                                               // ends a redrawn line (after note())
  double elapsed() const;

 private:
  bool due();
  void show(const std::string& text, bool final);
  std::string line(double done, const std::string& extra, bool final) const;
  std::string label_, unit_;
  double total_;
  bool enabled_, tty_, open_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

// "m:ss" (or "h:mm:ss").
std::string format_clock(double seconds);

}  // namespace mindllm
