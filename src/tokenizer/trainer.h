// Byte-level BPE training with the semantics of Hugging Face's BpeTrainer (so the merges agree):
// words are counted after normalization and pre-tokenization (in parallel), the vocabulary starts
// with the special tokens and then all 256 bytes in the order of their byte-level characters, and
// each step merges the most frequent pair (ties: the smallest pair of ids), keeping pair counts
// up to date incrementally (only the words that hold the merged pair are touched).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

namespace mindllm {

// Options of BPE tokenizer training (named apart from train/trainer.h's model TrainOptions: two
// classes of one name in one namespace break the one-definition rule).
struct BpeTrainOptions {
  std::vector<std::string> inputs;  // .txt (one sequence per line) or .jsonl/.json lines (field)
  std::string field = "text";
  size_t vocab_size = 32000;  // special tokens + 256 bytes + merges
  SplitPattern pattern = SplitPattern::gpt2;
  std::vector<std::string> special;
  uint64_t min_frequency = 2;
  int threads = 0;                // 0: all cores
  std::string normalizer;         // "", "nfc" or "nfkc"
  size_t max_words = 50'000'000;  // bound on distinct words kept while counting (memory)
  bool progress = true;
};

struct BpeTrainStats {
  double count_seconds = 0, merge_seconds = 0;
  uint64_t bytes = 0, sequences = 0, words = 0, unique_words = 0, pruned_words = 0;
};

// Trains on the input files.
Tokenizer train_bpe(const BpeTrainOptions& opts, BpeTrainStats* stats = nullptr);
// Trains on in-memory sequences (each one is pre-tokenized on its own, as a line of a file is).
Tokenizer train_bpe_from_texts(const std::vector<std::string>& texts, const BpeTrainOptions& opts,
                               BpeTrainStats* stats = nullptr);

}  // namespace mindllm
