#include "train/dist/overlap.h"

#include <algorithm>
#include <limits>

#include "model/model.h"

namespace mindllm::dist {

OverlappedReduce::OverlappedReduce(const ParamLayout& layout, int n_layers, size_t bucket_floats) {
  const size_t n = layout.total, step = std::clamp<size_t>(bucket_floats, 1, std::numeric_limits<int>::max());
  for (size_t b = 0; b < n; b += step) order_.push_back({b, std::min(n, b + step), 0});
  for (const ParamSpec& s : layout.specs) {
    const int stage = backward_stage(layout, n_layers, s.offset);
    for (size_t b = s.offset / step; b < order_.size() && order_[b].begin < s.offset + s.numel; b++)
      order_[b].ready = std::max(order_[b].ready, stage);
  }
  std::stable_sort(order_.begin(), order_.end(), [](const Bucket& a, const Bucket& b) {
    return a.ready != b.ready ? a.ready < b.ready : a.begin > b.begin;
  });
}

void OverlappedReduce::begin(Communicator& c, StartBucket start) {
  comm_ = &c;
  start_ = std::move(start);
  next_ = 0;
}

void OverlappedReduce::stage_done(int stage) {
  for (; next_ < order_.size() && order_[next_].ready <= stage; next_++) start_(order_[next_].begin, order_[next_].end);
  comm_->poll();  // Open MPI progresses a non-blocking collective inside MPI calls
}

void OverlappedReduce::finish() {
  stage_done(1 << 30);
  comm_->wait_all();
}

}  // namespace mindllm::dist
