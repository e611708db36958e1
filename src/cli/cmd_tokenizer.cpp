// mindllm tokenizer train | encode | decode | info | convert
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/output.h"
#include "cli/validate.h"
#include "core/error.h"
#include "core/file_io.h"
#include "data/reader.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/trainer.h"

namespace mindllm::cli {

namespace {

std::string read_input(const std::string& path) {
  if (!path.empty() && path != "-") return read_file(path);
  std::string s((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return s;
}

void write_all(const std::string& data, const std::string& path) {
  if (!path.empty() && path != "-") {
    write_file_atomic(path, data);
    return;
  }
  if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size()) internal_error("cannot write to stdout");
  std::fflush(stdout);
}

int cmd_train(int argc, char** argv) {
  CLI::App app{"Train a byte-level BPE tokenizer (Hugging Face BpeTrainer semantics); writes tokenizer.json",
               "mindllm tokenizer train"};
  BpeTrainOptions o;
  std::string pattern = "gpt2", output;
  OutputFlags out;
  app.add_option("--input", o.inputs,
                 "text files (one sequence per line) or .jsonl files, plain, .gz or .zst; directories and globs")
      ->required()
      ->expected(1, -1);
  app.add_option("--field", o.field, "jsonl field holding the text (\"a.b\": nested)")->capture_default_str();
  app.add_option("--vocab-size", o.vocab_size, "vocabulary size: special tokens + 256 bytes + merges")->required();
  app.add_option("--pattern", pattern, "pre-tokenizer split pattern: gpt2, llama3 or qwen2")->capture_default_str();
  app.add_option("--special", o.special, "special tokens (ids 0, 1, ... in this order)")->expected(1, -1);
  app.add_option("--min-frequency", o.min_frequency, "stop when the best pair is rarer than this")
      ->capture_default_str();
  add_threads_option(app, o.threads);
  app.add_option("--normalizer", o.normalizer, "none, nfc or nfkc")->capture_default_str();
  app.add_option("--max-words", o.max_words, "bound on distinct words held while counting (memory)")
      ->capture_default_str();
  app.add_option("--output", output, "tokenizer.json to write")->required();
  add_output_flags(app, out);
  parse_args(app, argc, argv);
  check_output_file(output, "--output");
  auto p = split_pattern_from_name(pattern);
  if (!p) bad_input("--pattern: expected gpt2, llama3 or qwen2, got '" + pattern + "'");
  o.pattern = *p;
  o.progress = !out.quiet;
  o.inputs = data::expand_inputs(o.inputs);  // directories and globs, as `data prepare -i`
  BpeTrainStats st;
  Tokenizer t = train_bpe(o, &st);
  t.save(output);
  char text[256];
  std::snprintf(text, sizeof text,
                "tokenizer train: wrote %s (%zu tokens, %zu merges; counting %.2f s, merging %.2f s)", output.c_str(),
                t.vocab_size(), t.num_merges(), st.count_seconds, st.merge_seconds);
  print_summary(out, "tokenizer train", text,
                {{"out", output},
                 {"vocab_size", t.vocab_size()},
                 {"merges", t.num_merges()},
                 {"seconds", st.count_seconds + st.merge_seconds}});
  return 0;
}

// Appends ids as decimal numbers separated by spaces, then a newline.
static void append_decimal_line(std::string& out, const std::vector<TokenId>& ids) {
  char buf[16];
  for (size_t i = 0; i < ids.size(); i++) {
    int n = std::snprintf(buf, sizeof buf, i ? " %d" : "%d", ids[i]);
    out.append(buf, n);
  }
  out.push_back('\n');
}

int cmd_encode(int argc, char** argv) {
  CLI::App app{"Encode the whole text of a file (or stdin) as one string; prints ids separated by spaces",
               "mindllm tokenizer encode"};
  std::string tok, input, output;
  int threads = 1;
  bool binary = false, jsonl = false;
  std::string field = "text";
  app.add_option("--tokenizer", tok, "tokenizer.json, or a directory with tokenizer.json or vocab.json + merges.txt")
      ->required();
  app.add_option("--input", input, "input file (default: stdin)");
  app.add_option("--output", output, "output file (default: stdout)");
  add_threads_option(app, threads);
  app.add_flag("--binary", binary, "write little-endian uint32 ids instead of text");
  app.add_flag("--jsonl", jsonl, "input is JSON lines: encode each record's --field, one line of ids per record");
  app.add_option("--field", field, "with --jsonl: the field holding the text")->capture_default_str();
  parse_args(app, argc, argv);
  if (!output.empty() && output != "-") check_output_file(output, "--output");
  Tokenizer t = Tokenizer::load(tok);
  std::string text = read_input(input);
  std::string where = input.empty() || input == "-" ? std::string("stdin") : input;
  std::string out;
  if (jsonl) {
    if (binary) bad_input("--jsonl and --binary cannot be combined");
    std::vector<std::string> texts;
    size_t pos = 0, line = 0;
    while (pos < text.size()) {
      size_t e = text.find('\n', pos);
      if (e == std::string::npos) e = text.size();
      std::string_view l(text.data() + pos, e - pos);
      pos = e + 1;
      line++;
      if (l.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      nlohmann::json rec;
      try {
        rec = nlohmann::json::parse(l.begin(), l.end());
      } catch (const nlohmann::json::exception&) { bad_input(where + ":" + std::to_string(line) + ": not valid JSON"); }
      if (rec.is_string()) {
        texts.push_back(rec.get<std::string>());
        continue;
      }
      auto it = rec.is_object() ? rec.find(field) : rec.end();
      if (!rec.is_object() || it == rec.end() || !it->is_string())
        bad_input(where + ":" + std::to_string(line) + ": no string field \"" + field + "\"");
      texts.push_back(it->get<std::string>());
    }
    for (auto& ids : t.encode_batch(texts, threads)) append_decimal_line(out, ids);
    write_all(out, output);
    return 0;
  }
  std::vector<TokenId> ids = t.encode_parallel(text, threads);
  if (binary) {
    out.resize(ids.size() * 4);
    for (size_t i = 0; i < ids.size(); i++) {
      const uint32_t v = static_cast<uint32_t>(ids[i]);
      for (int b = 0; b < 4; b++) out[i * 4 + b] = static_cast<char>((v >> (8 * b)) & 0xff);
    }
  } else {
    out.reserve(ids.size() * 6 + 1);
    append_decimal_line(out, ids);
  }
  write_all(out, output);
  return 0;
}

int cmd_decode(int argc, char** argv) {
  CLI::App app{"Decode ids (decimal, separated by whitespace; or --binary little-endian uint32) back to bytes",
               "mindllm tokenizer decode"};
  std::string tok, input, output;
  bool binary = false;
  app.add_option("--tokenizer", tok, "tokenizer.json, or a directory with tokenizer.json or vocab.json + merges.txt")
      ->required();
  app.add_option("--input", input, "input file (default: stdin)");
  app.add_option("--output", output, "output file (default: stdout)");
  app.add_flag("--binary", binary, "read little-endian uint32 ids");
  parse_args(app, argc, argv);
  if (!output.empty() && output != "-") check_output_file(output, "--output");
  Tokenizer t = Tokenizer::load(tok);
  std::string data = read_input(input);
  std::string where = input.empty() || input == "-" ? std::string("stdin") : input;
  std::vector<TokenId> ids;
  if (binary) {
    if (data.size() % 4)
      bad_input(where + ": size " + std::to_string(data.size()) + " is not a multiple of 4 (--binary)");
    ids.resize(data.size() / 4);
    for (size_t i = 0; i < ids.size(); i++) {
      const auto* p = reinterpret_cast<const unsigned char*>(data.data()) + 4 * i;
      ids[i] = static_cast<TokenId>(p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24));
    }
  } else {
    size_t i = 0, n = data.size();
    while (i < n) {
      unsigned char c = data[i];
      if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == ',') {
        i++;
        continue;
      }
      if (c < '0' || c > '9') bad_input(where + ": byte " + std::to_string(i) + ": expected a decimal token id");
      uint64_t v = 0;
      while (i < n && data[i] >= '0' && data[i] <= '9') {
        v = v * 10 + (data[i] - '0');
        if (v > 0x7FFFFFFFull) bad_input(where + ": byte " + std::to_string(i) + ": token id too large");
        i++;
      }
      ids.push_back(static_cast<TokenId>(v));
    }
  }
  write_all(t.decode(ids), output);
  return 0;
}

int cmd_info(int argc, char** argv) {
  CLI::App app{"Print a tokenizer's vocabulary size, merges, special tokens and content hash",
               "mindllm tokenizer info"};
  std::string tok;
  app.add_option("tokenizer", tok, "tokenizer.json or directory")->required();
  parse_args(app, argc, argv);
  Tokenizer t = Tokenizer::load(tok);
  std::printf("vocab_size %zu\nmerges %zu\n", t.vocab_size(), t.num_merges());
  auto eos = t.eos_id();
  if (eos) std::printf("eos %u %s\n", *eos, t.id_to_token(*eos)->c_str());
  std::printf("hash %016llx\n", static_cast<unsigned long long>(t.hash()));
  return 0;
}

int cmd_convert(int argc, char** argv) {
  CLI::App app{"Load a tokenizer (tokenizer.json or vocab.json + merges.txt dir) and write it as tokenizer.json",
               "mindllm tokenizer convert"};
  std::string tok, output;
  app.add_option("tokenizer", tok, "tokenizer.json or directory")->required();
  app.add_option("--output", output, "tokenizer.json to write")->required();
  parse_args(app, argc, argv);
  check_output_file(output, "--output");
  Tokenizer::load(tok).save(output);
  return 0;
}

// Times encoding in-process (for bench/tokenizer): JSON lines of strings in, one JSON line out.
int cmd_bench(int argc, char** argv) {
  CLI::App app{"Time encode_batch over JSON lines of strings (benchmark helper); prints one JSON line",
               "mindllm tokenizer bench"};
  std::string tok, input;
  int threads = 1, repeat = 1;
  bool pre_only = false;
  app.add_option("--tokenizer", tok, "tokenizer.json or directory")->required();
  app.add_option("--input", input, "JSON lines, each a string")->required();
  add_threads_option(app, threads);
  app.add_option("--repeat", repeat, "timed passes (the best is reported)")->capture_default_str();
  app.add_flag("--pre-tokenize", pre_only, "time the pre-tokenizer alone (one thread; \"tokens\" counts its pieces)");
  parse_args(app, argc, argv);
  auto t0 = std::chrono::steady_clock::now();
  Tokenizer t = Tokenizer::load(tok);
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string data = read_file(input);
  std::vector<std::string> texts;
  size_t bytes = 0, pos = 0;
  while (pos < data.size()) {
    size_t e = data.find('\n', pos);
    if (e == std::string::npos) e = data.size();
    std::string_view l(data.data() + pos, e - pos);
    pos = e + 1;
    if (l.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(l.begin(), l.end());
    } catch (const nlohmann::json::exception&) { bad_input(input + ": not valid JSON lines"); }
    if (!j.is_string()) bad_input(input + ": each line must be a JSON string");
    texts.push_back(j.get<std::string>());
    bytes += texts.back().size();
  }
  double best = 1e30;
  size_t tokens = 0;
  for (int r = 0; r < std::max(1, repeat); r++) {
    auto t1 = std::chrono::steady_clock::now();
    tokens = 0;
    if (pre_only) {
      std::string prefix;
      for (auto& text : texts) pre_tokenize(t.impl().pre, 0, text, prefix, [&](std::string_view) { tokens++; });
    } else {
      for (auto& v : t.encode_batch(texts, threads)) tokens += v.size();
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    best = std::min(best, s);
  }
  std::printf(
      "{\"bytes\": %zu, \"tokens\": %zu, \"seconds\": %.4f, \"mb_per_s\": %.3f, \"load_seconds\": %.3f, \"threads\": "
      "%d}\n",
      bytes, tokens, best, bytes / 1e6 / best, load_s, threads);
  return 0;
}

int run_tokenizer(int argc, char** argv) {
  return run_subcommand(argc, argv,
                        {{"train", cmd_train, "train a byte-level BPE tokenizer on text/jsonl files"},
                         {"encode", cmd_encode, "text -> ids"},
                         {"decode", cmd_decode, "ids -> text"},
                         {"info", cmd_info, "vocabulary size, merges, eos, hash"},
                         {"convert", cmd_convert, "vocab.json + merges.txt (or tokenizer.json) -> tokenizer.json"},
                         {"bench", cmd_bench, "time encoding (benchmark helper)"}});
}

}  // namespace

MINDLLM_COMMAND("tokenizer", "train / encode / decode byte-level BPE tokenizers (Hugging Face compatible)",
                run_tokenizer);

}  // namespace mindllm::cli
