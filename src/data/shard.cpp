#include "data/shard.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace mindllm {

void write_shard(const std::string& path, std::span<const uint32_t> tokens, uint32_t vocab_size,
                 uint64_t tokenizer_hash) {
  bool wide = vocab_size == 0 || vocab_size > 65536;
  int32_t header[256] = {0};
  header[0] = wide ? kShardMagicU32 : kShardMagicU16;
  header[1] = wide ? kShardVersionU32 : kShardVersionU16;
  if (tokens.size() > 0x7fffffffu) bad_input(path + ": more than 2^31-1 tokens in one shard");
  header[2] = static_cast<int32_t>(tokens.size());
  header[3] = static_cast<int32_t>(vocab_size);
  header[4] = static_cast<int32_t>(tokenizer_hash & 0xffffffffu);
  header[5] = static_cast<int32_t>(tokenizer_hash >> 32);
  std::string out(reinterpret_cast<const char*>(header), sizeof(header));
  if (wide) {
    out.append(reinterpret_cast<const char*>(tokens.data()), tokens.size() * 4);
  } else {
    std::vector<uint16_t> t16(tokens.size());
    for (size_t i = 0; i < tokens.size(); i++) {
      if (tokens[i] >= vocab_size) bad_input(path + ": token id " + std::to_string(tokens[i]) + " >= vocab size");
      t16[i] = static_cast<uint16_t>(tokens[i]);
    }
    out.append(reinterpret_cast<const char*>(t16.data()), t16.size() * 2);
  }
  write_file_atomic(path, out);
}

Shard::Shard(const std::string& path) : map_(path) {
  auto b = map_.bytes();
  if (b.size() < kShardHeaderBytes) bad_input(path + ": not a token shard (shorter than its 1024-byte header)");
  int32_t h[256];
  std::memcpy(h, b.data(), sizeof(h));
  if (h[0] == kShardMagicU16 && h[1] == kShardVersionU16) header_.token_bytes = 2;
  else if (h[0] == kShardMagicU32 && h[1] == kShardVersionU32) header_.token_bytes = 4;
  else
    bad_input(path + ": not a token shard (magic " + std::to_string(h[0]) + ", version " + std::to_string(h[1]) + ")");
  if (h[2] < 0) bad_input(path + ": negative token count in header");
  header_.count = static_cast<uint64_t>(h[2]);
  header_.vocab_size = static_cast<uint32_t>(h[3]);
  header_.tokenizer_hash = static_cast<uint32_t>(h[4]) | (static_cast<uint64_t>(static_cast<uint32_t>(h[5])) << 32);
  uint64_t expect = kShardHeaderBytes + header_.count * header_.token_bytes;
  if (b.size() != expect)
    bad_input(path + ": truncated or padded shard: header says " + std::to_string(header_.count) + " tokens (" +
              std::to_string(expect) + " bytes), file has " + std::to_string(b.size()) + " bytes");
  data_ = b.data() + kShardHeaderBytes;
}

uint32_t Shard::at(uint64_t i) const {
  if (header_.token_bytes == 2) {
    uint16_t v;
    std::memcpy(&v, data_ + 2 * i, 2);
    return v;
  }
  uint32_t v;
  std::memcpy(&v, data_ + 4 * i, 4);
  return v;
}

void Shard::copy(uint64_t begin, uint64_t n, int32_t* out) const {
  for (uint64_t i = 0; i < n; i++) out[i] = static_cast<int32_t>(at(begin + i));
}

TokenStream::TokenStream(const std::string& dir, const std::string& split, uint32_t model_vocab_size) {
  if (!is_directory(dir)) bad_input(dir + ": not a directory of token shards");
  std::vector<std::string> files;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.rfind(split + "-", 0) == 0 && name.size() > 4 && name.substr(name.size() - 4) == ".bin")
      files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  for (auto& f : files) {
    Shard s(f);
    if (model_vocab_size > 0) {
      if (s.header().vocab_size > model_vocab_size)
        bad_input(f + ": shard vocab size " + std::to_string(s.header().vocab_size) + " exceeds the model's " +
                  std::to_string(model_vocab_size));
      for (uint64_t i = 0; i < s.size(); i++)
        if (s.at(i) >= model_vocab_size)
          bad_input(f + ": token " + std::to_string(i) + " has id " + std::to_string(s.at(i)) +
                    ", outside the model's vocabulary of " + std::to_string(model_vocab_size));
    }
    starts_.push_back(total_);
    total_ += s.size();
    shards_.push_back(std::move(s));
  }
}

void TokenStream::copy(uint64_t begin, uint64_t n, int32_t* out) const {
  if (begin + n > total_) internal_error("TokenStream::copy past the end");
  size_t si = std::upper_bound(starts_.begin(), starts_.end(), begin) - starts_.begin() - 1;
  while (n > 0) {
    uint64_t off = begin - starts_[si];
    uint64_t take = std::min<uint64_t>(n, shards_[si].size() - off);
    shards_[si].copy(off, take, out);
    out += take;
    begin += take;
    n -= take;
    si++;
  }
}

}  // namespace mindllm
