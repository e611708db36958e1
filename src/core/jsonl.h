// JSON Lines, split once for every reader of a .jsonl text (eval documents, instruction data,
// metrics.jsonl): a UTF-8 byte-order mark at the start is skipped, "\r\n" endings and trailing
// blanks are trimmed, blank lines are skipped, and each line comes with its 1-based number so
// that messages can name it. (The data pipeline streams compressed files through
// data::LineReader instead: it cannot hold a corpus in memory.)
#pragma once
#include <cstddef>
#include <string_view>

namespace mindllm {

// Calls f(line, line_no) for every non-blank line of `text`.
template <class F>
void for_each_jsonl_line(std::string_view text, F&& f) {
  size_t pos = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    line_no++;
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    f(line, line_no);
  }
}

}  // namespace mindllm
