// Batches of documents read on a background thread (at most two batches ahead), for the
// commands that process a batch in parallel and decide in input order (prepare, dedup).
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "data/reader.h"

namespace mindllm::data {

class BatchReader {
 public:
  // spans: what to read of the files (whole_files() for all of them).
  BatchReader(std::vector<std::string> files, const ReaderConfig& rc, uint64_t batch_bytes, std::vector<ReadSpan> spans)
      : reader_(std::move(files), rc, std::move(spans)), batch_bytes_(batch_bytes) {
    thread_ = std::thread([this] { run(); });
  }
  ~BatchReader() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  // Next batch; empty at the end. Rethrows an error from the reader thread.
  std::vector<RawDoc> next() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !queue_.empty() || done_; });
    if (error_) std::rethrow_exception(error_);
    if (queue_.empty()) return {};
    auto b = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return b;
  }
  uint64_t bytes_read() const { return bytes_read_.load(); }
  ReadStats stats() {
    std::lock_guard<std::mutex> l(mu_);
    return reader_.stats();
  }

 private:
  void run() {
    try {
      for (;;) {
        std::vector<RawDoc> batch;
        uint64_t bytes = 0;
        RawDoc d;
        bool more = true;
        while (bytes < batch_bytes_ && (more = reader_.next(d))) {
          bytes += d.text.size();
          batch.push_back(std::move(d));
          d = RawDoc{};
          bytes_read_ = reader_.bytes_read();
        }
        bytes_read_ = reader_.bytes_read();
        std::unique_lock<std::mutex> l(mu_);
        if (!batch.empty()) queue_.push_back(std::move(batch));
        cv_.notify_all();
        if (!more) break;
        cv_.wait(l, [&] { return queue_.size() < 2 || stop_; });
        if (stop_) break;
      }
    } catch (...) {
      std::lock_guard<std::mutex> l(mu_);
      error_ = std::current_exception();
    }
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
    cv_.notify_all();
  }
  DocumentReader reader_;
  uint64_t batch_bytes_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<RawDoc>> queue_;
  bool done_ = false, stop_ = false;
  std::exception_ptr error_;
  std::atomic<uint64_t> bytes_read_{0};
};

}  // namespace mindllm::data
