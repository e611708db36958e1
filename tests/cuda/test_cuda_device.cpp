// The device plumbing: "no GPU" is a clean answer, the arena plans aligned pieces.
#include "cuda_test_util.h"

namespace mindllm {
namespace {

// Runs everywhere (also in CI without a GPU): asking must not throw or crash.
TEST(CudaDevice, CountIsCleanWithoutGpu) {
  int n = cuda::device_count();
  EXPECT_GE(n, 0);
  EXPECT_EQ(cuda::available(), n > 0);
  EXPECT_FALSE(cuda::device_description().empty());
  if (n == 0) { EXPECT_EQ(cuda::device_description(), "no GPU"); }
}

TEST(CudaDevice, ArenaPlansAlignedPieces) {
  SKIP_WITHOUT_GPU();
  cuda::Arena arena;
  size_t a = arena.reserve(10);
  size_t b = arena.reserve_n<float>(1000);
  size_t c = arena.reserve(1, 4096);
  EXPECT_EQ(a, 0u);
  EXPECT_EQ(b % 256, 0u);
  EXPECT_GE(b, 10u);
  EXPECT_EQ(c % 4096, 0u);
  EXPECT_GE(c, b + 4000);
  arena.allocate();
  EXPECT_TRUE(arena.allocated());
  float* p = arena.at<float>(b);
  std::vector<float> host(1000, 3.0f);
  MINDLLM_CUDA_CHECK(cudaMemcpy(p, host.data(), 4000, cudaMemcpyHostToDevice));
  std::vector<float> back(1000);
  MINDLLM_CUDA_CHECK(cudaMemcpy(back.data(), p, 4000, cudaMemcpyDeviceToHost));
  EXPECT_EQ(back, host);
  EXPECT_THROW(arena.reserve(8), Error);
}

TEST(CudaDevice, ErrorsBecomeMindllmErrors) {
  SKIP_WITHOUT_GPU();
  // An impossible allocation: the runtime's error arrives as mindllm::Error with its message.
  cuda::Arena arena;
  arena.reserve(size_t{1} << 50);
  try {
    arena.allocate();
    FAIL() << "allocating 1 PiB succeeded";
  } catch (const Error& e) { EXPECT_NE(std::string(e.what()).find("arena"), std::string::npos) << e.what(); }
  cuda::synchronize();  // the failed allocation left no sticky error behind
}

}  // namespace
}  // namespace mindllm
