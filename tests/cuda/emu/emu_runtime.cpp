// The CPU emulator's runtime (tests/cuda/emu/README.md): device memory, errors, and kernel
// execution — each block alone, its threads as fibers on the calling OS thread (a hand-written
// context switch on x86-64, ucontext elsewhere).
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

namespace emu {
namespace {

// ---- errors ---------------------------------------------------------------------------------

cudaError_t last_error = cudaSuccess;

cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess) last_error = e;
  return e;
}

// ---- device memory --------------------------------------------------------------------------

// The byte that fills fresh device memory and shared memory (MINDLLM_EMU_POISON, hex).
unsigned char poison_byte() {
  static const unsigned char b = [] {
    const char* e = std::getenv("MINDLLM_EMU_POISON");
    return e ? (unsigned char)std::strtoul(e, nullptr, 16) : (unsigned char)0xff;
  }();
  return b;
}

constexpr size_t kTotalMemory = size_t{80} << 30;                   // an 80 GB card
constexpr size_t kSharedDefault = 48 << 10, kSharedOptin = 232448;  // sm_90
std::mutex mem_mutex;
std::map<uintptr_t, size_t> allocations;  // start -> bytes
size_t allocated = 0;

}  // namespace

bool is_device(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(mem_mutex);
  const auto a = reinterpret_cast<uintptr_t>(p);
  auto it = allocations.upper_bound(a);
  if (it == allocations.begin()) return false;
  --it;
  return a + bytes <= it->first + it->second;  // it->first <= a: upper_bound's predecessor
}

namespace {

cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, const char* what) {
  if (bytes == 0 || kind == cudaMemcpyDefault) return cudaSuccess;
  const bool dst_dev = is_device(dst, bytes), src_dev = is_device(src, bytes);
  const bool want_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool want_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (want_dst != dst_dev || want_src != src_dev) {
    std::fprintf(stderr, "emu: %s of %zu bytes: destination %p is %s, source %p is %s (kind %d)\n", what, bytes, dst,
                 dst_dev ? "device memory" : "not inside a device allocation", src,
                 src_dev ? "device memory" : "not inside a device allocation", (int)kind);
    return set_error(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

// ---- kernels --------------------------------------------------------------------------------

std::map<const void*, int> max_dynamic_smem;  // cudaFuncSetAttribute

enum class State { ready, at_block, at_warp, done };

// Switching fibers. glibc's swapcontext makes a system call (the signal mask) on every switch,
// which was 90% of the emulator's time; on x86-64 a switch saves the callee-saved registers and
// the FP control words on the old stack and pops them from the new one. Elsewhere: ucontext.
#if defined(__x86_64__)
extern "C" void emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .globl emu_switch
  .type emu_switch, @function
emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size emu_switch, .-emu_switch
)");
struct Fiber {
  void* sp;
  State state;
  void* asan_fake_stack;
};
void* scheduler_sp = nullptr;
#else
struct Fiber {
  ucontext_t ctx;
  State state;
  void* asan_fake_stack;
};
ucontext_t scheduler;
#endif

constexpr size_t kStackBytes = 256 << 10;
constexpr int kMaxThreads = 1024;
char* stacks = nullptr;  // kMaxThreads stacks, each with a guard page at its low end
std::vector<Fiber> fibers(kMaxThreads);
int current = -1;
void (*kernel_body)(void*) = nullptr;
void* kernel_ctx = nullptr;
std::vector<unsigned char> smem_buffer;
unsigned char* smem_base = nullptr;
uint64_t warp_exchange[kMaxThreads / 32][32];

void set_thread_index(int t) {
  threadIdx.x = t % blockDim.x;
  threadIdx.y = (t / blockDim.x) % blockDim.y;
  threadIdx.z = t / (blockDim.x * blockDim.y);
}

// Under AddressSanitizer (an ASan build of the emulator checks the kernels' memory accesses, as
// compute-sanitizer's memcheck would) every switch is announced: the stack being entered, and on
// arrival the fake stack of the context being resumed.
#if EMU_ASAN
void* scheduler_fake_stack = nullptr;
const void* scheduler_stack_bottom = nullptr;
size_t scheduler_stack_size = 0;
#endif

void to_scheduler() {
#if EMU_ASAN
  Fiber& f = fibers[current];
  __sanitizer_start_switch_fiber(f.state == State::done ? nullptr : &f.asan_fake_stack, scheduler_stack_bottom,
                                 scheduler_stack_size);
#endif
#if defined(__x86_64__)
  emu_switch(&fibers[current].sp, scheduler_sp);
#else
  swapcontext(&fibers[current].ctx, &scheduler);
#endif
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(fibers[current].asan_fake_stack, nullptr, nullptr);
#endif
}

[[noreturn]] void fiber_main() {
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &scheduler_stack_bottom, &scheduler_stack_size);
#endif
  kernel_body(kernel_ctx);
  fibers[current].state = State::done;
  to_scheduler();
  fail("a finished fiber was resumed");
}

void start_fiber(int t) {
  Fiber& f = fibers[t];
  f.state = State::ready;
  f.asan_fake_stack = nullptr;
#if EMU_ASAN  // the previous block's fiber left its frames' redzones poisoned
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  __asan_unpoison_memory_region(stacks + t * kStackBytes + page, kStackBytes - page);
#endif
#if defined(__x86_64__)
  // The frame emu_switch pops: FP control words, r15 ... rbp, then fiber_main as the return
  // address; fiber_main starts with rsp = 8 mod 16, as after a call.
  auto* top = reinterpret_cast<uint64_t*>(stacks + (t + 1) * kStackBytes);
  uint64_t* sp = top - 1;  // a null "return address" for fiber_main
  *sp = 0;
  *--sp = reinterpret_cast<uint64_t>(&fiber_main);
  for (int r = 0; r < 6; r++) *--sp = 0;
  uint32_t ctl[2];
  asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(ctl[0]), "=m"(ctl[1]));
  *--sp = (uint64_t)ctl[0] | ((uint64_t)ctl[1] << 32);
  f.sp = sp;
#else
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = stacks + t * kStackBytes;
  f.ctx.uc_stack.ss_size = kStackBytes;
  f.ctx.uc_link = &scheduler;
  makecontext(&f.ctx, (void (*)())fiber_main, 0);
#endif
}

void resume_fiber(int t) {
  current = t;
  set_thread_index(t);
#if EMU_ASAN
  __sanitizer_start_switch_fiber(&scheduler_fake_stack, stacks + t * kStackBytes, kStackBytes);
#endif
#if defined(__x86_64__)
  emu_switch(&scheduler_sp, fibers[t].sp);
#else
  swapcontext(&scheduler, &fibers[t].ctx);
#endif
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(scheduler_fake_stack, nullptr, nullptr);
#endif
}

void yield(State s) {
  fibers[current].state = s;
  to_scheduler();
}

void ensure_stacks() {
  if (stacks) return;
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void* p = mmap(nullptr, kStackBytes * kMaxThreads, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) fail("cannot map %zu bytes of fiber stacks", kStackBytes * kMaxThreads);
  stacks = static_cast<char*>(p);
  for (int t = 0; t < kMaxThreads; t++) mprotect(stacks + t * kStackBytes, page, PROT_NONE);
}

// The order threads run in between barriers; both are schedules a GPU may choose, and a race
// (a missing barrier) usually gives a different result under one of them.
//   lockstep (default): every warp in turn runs to its next barrier, lanes in order;
//   reverse (MINDLLM_EMU_SCHEDULE=reverse): the last warp first, each warp as far as it can get
//   before the next starts (through its warp barriers, up to __syncthreads), lanes backwards.
bool reverse_schedule() {
  static const bool r = [] {
    const char* e = std::getenv("MINDLLM_EMU_SCHEDULE");
    return e && std::string(e) == "reverse";
  }();
  return r;
}

// Runs the warp's ready lanes once, then opens its warp barrier if every live lane waits there.
// Returns whether anything ran or opened; counts finished threads in `live`.
bool step_warp(int w, int n, int& live) {
  const int lo = w * 32, hi = std::min(n, w * 32 + 32);
  const bool rev = reverse_schedule();
  bool any = false;
  for (int i = lo; i < hi; i++) {
    const int t = rev ? lo + hi - 1 - i : i;
    if (fibers[t].state != State::ready) continue;
    resume_fiber(t);
    any = true;
    if (fibers[t].state == State::done) live--;
  }
  current = -1;
  int waiting = 0, alive = 0;
  for (int t = lo; t < hi; t++) {
    if (fibers[t].state == State::done) continue;
    alive++;
    waiting += fibers[t].state == State::at_warp;
  }
  if (alive && waiting == alive) {
    for (int t = lo; t < hi; t++)
      if (fibers[t].state == State::at_warp) fibers[t].state = State::ready;
    any = true;
  }
  return any;
}

void run_block(int n) {
  for (int t = 0; t < n; t++) start_fiber(t);
  const int warps = (n + 31) / 32;
  int live = n;
  while (live > 0) {
    bool any = false;
    if (reverse_schedule()) {
      for (int w = warps - 1; w >= 0; w--)
        while (step_warp(w, n, live)) any = true;
    } else {
      for (int w = 0; w < warps; w++) any |= step_warp(w, n, live);
    }
    if (any || live == 0) continue;
    int at_block = 0, at_warp = 0;
    for (int t = 0; t < n; t++) {
      at_block += fibers[t].state == State::at_block;
      at_warp += fibers[t].state == State::at_warp;
    }
    if (at_block == live) {  // __syncthreads opens when every live thread waits there
      for (int t = 0; t < n; t++)
        if (fibers[t].state == State::at_block) fibers[t].state = State::ready;
      continue;
    }
    fail("deadlock in block (%u,%u,%u): %d threads wait at __syncthreads, %d at a warp barrier, %d exited", blockIdx.x,
         blockIdx.y, blockIdx.z, at_block, at_warp, n - live);
  }
}

}  // namespace

void trap(const char* file, int line) { fail("__trap() at %s:%d", file, line); }

void fail(const char* fmt, ...) {
  std::fprintf(stderr, "emu: ");
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  std::abort();
}

void block_barrier() {
  if (current < 0) fail("__syncthreads outside a kernel");
  yield(State::at_block);
}

void warp_barrier() {
  if (current < 0) fail("warp barrier outside a kernel");
  yield(State::at_warp);
}

int lane_id() { return current & 31; }
int fragment_lane() { return reverse_schedule() ? 0 : 31; }
uint64_t* warp_slots() { return warp_exchange[current >> 5]; }
unsigned char* dynamic_smem() { return smem_base; }

void bad_pointer_argument(const void* fn, int index, const void* p) {
  fail("kernel %p: pointer argument %d (%p) is not inside a device allocation", fn, index, p);
}

cudaError_t set_function_attribute(const void* fn, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || (size_t)value > kSharedOptin) return set_error(cudaErrorInvalidValue);
    max_dynamic_smem[fn] = value;
  }
  return cudaSuccess;
}

void run(const LaunchConfig& cfg, void (*body)(void*), void* ctx) {
  const dim3 b = cfg.block, g = cfg.grid;
  const size_t threads = (size_t)b.x * b.y * b.z;
  if (threads == 0 || threads > kMaxThreads || b.x > 1024 || b.y > 1024 || b.z > 64 || g.x == 0 || g.y == 0 ||
      g.z == 0 || g.x > 2147483647u || g.y > 65535 || g.z > 65535) {
    std::fprintf(stderr, "emu: kernel %p: bad launch configuration grid (%u,%u,%u) block (%u,%u,%u)\n", cfg.fn, g.x,
                 g.y, g.z, b.x, b.y, b.z);
    set_error(cudaErrorInvalidConfiguration);
    return;
  }
  auto it = max_dynamic_smem.find(cfg.fn);
  const size_t smem_limit =
      it != max_dynamic_smem.end() ? std::max<size_t>(it->second, kSharedDefault) : kSharedDefault;
  if (cfg.smem > smem_limit) {
    std::fprintf(stderr, "emu: kernel %p: %zu bytes of dynamic shared memory, limit %zu (cudaFuncSetAttribute)\n",
                 cfg.fn, cfg.smem, smem_limit);
    set_error(cudaErrorInvalidValue);
    return;
  }
  if (current >= 0) fail("kernel launched from inside a kernel");
  ensure_stacks();
  kernel_body = body;
  kernel_ctx = ctx;
  blockDim = b;
  gridDim = g;
  smem_buffer.resize(cfg.smem + 256);
  smem_base =
      reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(smem_buffer.data()) + 255) & ~uintptr_t{255});
  for (unsigned z = 0; z < g.z; z++)
    for (unsigned y = 0; y < g.y; y++)
      for (unsigned x = 0; x < g.x; x++) {
        blockIdx = uint3{x, y, z};
        std::memset(smem_base, poison_byte(), cfg.smem);  // uninitialised shared memory reads as NaN
        run_block((int)threads);
      }
}

}  // namespace emu

// ---- the runtime API ------------------------------------------------------------------------

using emu::set_error;

cudaError_t cudaGetDeviceCount(int* count) {
  if (std::getenv("MINDLLM_EMU_NO_GPU")) {
    *count = 0;
    return set_error(cudaErrorNoDevice);
  }
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return set_error(cudaErrorInvalidValue);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof(prop->name), "mindllm CPU emulator");
  prop->totalGlobalMem = emu::kTotalMemory;
  prop->sharedMemPerBlock = emu::kSharedDefault;
  prop->sharedMemPerBlockOptin = emu::kSharedOptin;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 4;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  cudaDeviceProp p;
  if (attr != cudaDevAttrMultiProcessorCount || cudaGetDeviceProperties(&p, device) != cudaSuccess)
    return set_error(cudaErrorInvalidValue);
  *value = p.multiProcessorCount;
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  cudaError_t e = emu::last_error;
  emu::last_error = cudaSuccess;
  return e;
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
  }
  return "unrecognized error code";
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = nullptr;
  if (bytes == 0) return cudaSuccess;
  std::lock_guard<std::mutex> lock(emu::mem_mutex);
  if (bytes > emu::kTotalMemory - emu::allocated) return set_error(cudaErrorMemoryAllocation);
  void* q = nullptr;  // exactly `bytes` long, so an ASan build sees accesses past the end
  if (posix_memalign(&q, 256, bytes) != 0) return set_error(cudaErrorMemoryAllocation);
  std::memset(q, emu::poison_byte(), bytes);  // fresh device memory reads as NaN
  emu::allocations[reinterpret_cast<uintptr_t>(q)] = bytes;
  emu::allocated += bytes;
  *p = q;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  std::lock_guard<std::mutex> lock(emu::mem_mutex);
  auto it = emu::allocations.find(reinterpret_cast<uintptr_t>(p));
  if (it == emu::allocations.end()) return set_error(cudaErrorInvalidDevicePointer);
  emu::allocated -= it->second;
  emu::allocations.erase(it);
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard<std::mutex> lock(emu::mem_mutex);
  *total_bytes = emu::kTotalMemory;
  *free_bytes = emu::kTotalMemory - emu::allocated;
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = emu::check_copy(dst, src, bytes, kind, "cudaMemcpy")) return e;
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (!emu::is_device(p, bytes)) {
    std::fprintf(stderr, "emu: cudaMemset of %zu bytes at %p leaves its device allocation\n", bytes, p);
    return set_error(cudaErrorInvalidValue);
  }
  std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) { return cudaMemset(p, value, bytes); }

cudaError_t cudaMemset2DAsync(void* p, size_t pitch, int value, size_t width, size_t height, cudaStream_t) {
  if (width == 0 || height == 0) return cudaSuccess;
  if (width > pitch) return set_error(cudaErrorInvalidValue);
  if (!emu::is_device(p, pitch * (height - 1) + width)) {
    std::fprintf(stderr, "emu: cudaMemset2D of %zu x %zu (pitch %zu) at %p leaves its device allocation\n", height,
                 width, pitch, p);
    return set_error(cudaErrorInvalidValue);
  }
  for (size_t r = 0; r < height; r++) std::memset(static_cast<char*>(p) + r * pitch, value, width);
  return cudaSuccess;
}

static CUstream_st* const kStream = reinterpret_cast<CUstream_st*>(uintptr_t{0x5157});
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = kStream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
