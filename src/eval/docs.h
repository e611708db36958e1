// Reading benchmark files into documents (one JSON object per item): CSV (RFC 4180 quoting,
// optional header, UTF-8 BOM) and JSONL. Every error names the file and line.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mindllm::eval {

struct Doc {
  nlohmann::json fields;  // the item: CSV cells as strings by column name, or the JSON object
  std::string where;      // "file:line" for error messages
};

// CSV records of a file: each a list of cells with the line it starts on.
struct CsvRecord {
  std::vector<std::string> cells;
  int line = 0;
};
std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& path);

// A CSV file as documents. With header: columns named by the first record (an empty first
// name, as in CMMLU's index column, becomes "_index"); `columns`, when given, renames them in
// order (headerless files need it). Rows with a different number of cells are bad input.
std::vector<Doc> read_csv_docs(const std::string& path, bool header, const std::vector<std::string>& columns);

// A JSONL file: one object per non-empty line.
std::vector<Doc> read_jsonl_docs(const std::string& path);

}  // namespace mindllm::eval
