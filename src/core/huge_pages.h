// Memory for large buffers read on every token (the quantised weights, the K/V cache): 2 MiB
// aligned, a whole number of 2 MiB, and madvise(MADV_HUGEPAGE)d before anything is written, so
// Linux backs it with transparent huge pages where it allows ("always" or "madvise" mode): one TLB
// entry per 2 MiB instead of 512 (decode streams GBs of weights; attention touches one head slice
// per 4 KiB page of a wide model's cache). Advice only: 4 KiB pages where refused.
#pragma once
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace mindllm {

constexpr size_t kHugePage = size_t{2} << 20;
using HugeBuffer = std::unique_ptr<uint8_t, void (*)(void*)>;

inline size_t huge_round(size_t bytes) { return (std::max<size_t>(bytes, 1) + kHugePage - 1) / kHugePage * kHugePage; }

// huge_round(bytes) bytes, uninitialised; std::bad_alloc when there is no memory.
inline HugeBuffer huge_alloc(size_t bytes) {
  const size_t n = huge_round(bytes);
  HugeBuffer b{static_cast<uint8_t*>(std::aligned_alloc(kHugePage, n)), std::free};
  if (!b) throw std::bad_alloc();
#if defined(MADV_HUGEPAGE)
  madvise(b.get(), n, MADV_HUGEPAGE);
#endif
  return b;
}

}  // namespace mindllm
