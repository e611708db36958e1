#include "eval/docs.h"

#include "core/error.h"
#include "core/jsonl.h"
#include "core/file_io.h"

namespace mindllm::eval {

std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& path) {
  std::vector<CsvRecord> out;
  size_t i = 0, n = text.size();
  if (n >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;
  int line = 1;
  while (i < n) {
    CsvRecord rec;
    rec.line = line;
    std::string cell;
    bool end_of_record = false;
    while (!end_of_record) {
      cell.clear();
      if (i < n && text[i] == '"') {
        const int start_line = line;
        i++;
        while (true) {
          if (i >= n) bad_input(path + ":" + std::to_string(start_line) + ": unterminated quoted CSV field");
          char c = text[i++];
          if (c == '"') {
            if (i < n && text[i] == '"') {
              cell.push_back('"');
              i++;
            } else {
              break;
            }
          } else {
            if (c == '\n') line++;
            cell.push_back(c);
          }
        }
        if (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r')
          bad_input(path + ":" + std::to_string(line) + ": text after a closing quote in a CSV field");
      } else {
        while (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') cell.push_back(text[i++]);
      }
      rec.cells.push_back(cell);
      if (i >= n) {
        end_of_record = true;
      } else if (text[i] == ',') {
        i++;
      } else {
        if (text[i] == '\r') i++;
        if (i < n && text[i] == '\n') i++;
        line++;
        end_of_record = true;
      }
    }
    bool blank = rec.cells.size() == 1 && rec.cells[0].empty();
    if (!blank) out.push_back(std::move(rec));
  }
  return out;
}

std::vector<Doc> read_csv_docs(const std::string& path, bool header, const std::vector<std::string>& columns) {
  std::vector<CsvRecord> recs = parse_csv(read_file(path), path);
  std::vector<std::string> names;
  size_t first = 0;
  if (header) {
    if (recs.empty()) bad_input(path + ": empty CSV file (no header)");
    names = recs[0].cells;
    for (auto& nm : names)
      if (nm.empty()) nm = "_index";
    first = 1;
  }
  if (!columns.empty()) {
    if (header && columns.size() != names.size())
      bad_input(path + ":1: header has " + std::to_string(names.size()) + " columns, the task expects " +
                std::to_string(columns.size()));
    names = columns;
  }
  if (names.empty()) bad_input(path + ": headerless CSV and no column names in the task spec");
  std::vector<Doc> docs;
  for (size_t r = first; r < recs.size(); r++) {
    const CsvRecord& rec = recs[r];
    // Trailing optional columns (C-Eval's explanation) may be missing; anything else must match.
    if (rec.cells.size() > names.size() || rec.cells.size() + 1 < names.size() ||
        (rec.cells.size() + 1 == names.size() && names.back() != "explanation"))
      bad_input(path + ":" + std::to_string(rec.line) + ": " + std::to_string(rec.cells.size()) +
                " columns, expected " + std::to_string(names.size()));
    Doc d;
    d.where = path + ":" + std::to_string(rec.line);
    d.fields = nlohmann::json::object();
    for (size_t c = 0; c < rec.cells.size(); c++) d.fields[names[c]] = rec.cells[c];
    docs.push_back(std::move(d));
  }
  return docs;
}

std::vector<Doc> read_jsonl_docs(const std::string& path) {
  std::string text = read_file(path);
  std::vector<Doc> docs;
  for_each_jsonl_line(text, [&](std::string_view ln, int line) {
    Doc d;
    d.where = path + ":" + std::to_string(line);
    try {
      d.fields = nlohmann::json::parse(ln);
    } catch (const nlohmann::json::exception& e) {
      bad_input(d.where + ": not valid JSON (" + std::string(e.what()).substr(0, 120) + ")");
    }
    if (!d.fields.is_object()) bad_input(d.where + ": expected a JSON object");
    docs.push_back(std::move(d));
  });
  return docs;
}

}  // namespace mindllm::eval
