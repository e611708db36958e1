// An exception must not leave an OpenMP parallel region (the runtime calls std::terminate, so an
// out-of-memory in a thread's scratch would abort instead of reaching main's one-line error).
// Code in a region runs through trap.run(), which keeps the first exception; after the region,
// trap.rethrow() throws it on the calling thread:
//   OmpExceptionTrap trap;
//   #pragma omp parallel
//   { bool ok = trap.run([&] { scratch.resize(n); });
//     #pragma omp for                  // every thread still meets the worksharing construct
//     for (...) if (ok) ...; }
//   trap.rethrow();
#pragma once
#include <exception>
#include <mutex>

namespace mindllm::cpu {

class OmpExceptionTrap {
 public:
  // Runs f; returns false (keeping the first exception of any thread) if it threw.
  template <typename F>
  bool run(F&& f) noexcept {
    try {
      f();
      return true;
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!first_) first_ = std::current_exception();
      return false;
    }
  }
  void rethrow() {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::mutex mu_;
  std::exception_ptr first_;
};

}  // namespace mindllm::cpu
