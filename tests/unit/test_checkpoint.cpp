// Checkpoint names, finding the checkpoint to resume from without ckpt/latest, the removal of
// stale temporaries of killed runs, and exceptions out of OpenMP regions (issue 24).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <new>
#include <omp.h>

#include "test_tmp.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "kernels/cpu/omp_trap.h"
#include "train/checkpoint.h"

using namespace mindllm;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path d = mindllm_test::fresh_tmp_dir("ckpt_" + name);
  fs::create_directories(d / "ckpt");
  return d;
}

}  // namespace

TEST(Checkpoint, StepOfName) {
  EXPECT_EQ(checkpoint_name(100), "step-0000100");
  EXPECT_EQ(checkpoint_step("step-0000100"), 100);
  EXPECT_EQ(checkpoint_step("step-123456789"), 123456789);
  EXPECT_EQ(checkpoint_step("step--000002"), -1);
  EXPECT_EQ(checkpoint_step("step-12"), -1);
  EXPECT_EQ(checkpoint_step("step-0000100x"), -1);
  EXPECT_EQ(checkpoint_step("latest"), -1);
}

TEST(Checkpoint, NoCheckpointsMeansNothingToResume) {
  fs::path d = fresh_dir("none");
  EXPECT_FALSE(latest_checkpoint(d.string()).has_value());
  EXPECT_FALSE(has_checkpoints(d.string()));
  fs::create_directories(d / "ckpt" / "step-0000002");  // an empty step directory still counts
  EXPECT_TRUE(has_checkpoints(d.string()));
  set_log_enabled(false);
  EXPECT_THROW(latest_checkpoint(d.string()), Error);  // step directories, none complete
  set_log_enabled(true);
  fs::remove_all(d);
}

TEST(Checkpoint, StaleTemporariesOfDeadProcessesOnly) {
  fs::path d = fresh_dir("stale");
  fs::path dead = d / "ckpt" / ".tmp-step-0000003-999999999", mine = d / "ckpt" / ".tmp-step-0000003-1",
           other = d / "ckpt" / ".tmp-notes", step = d / "ckpt" / "step-0000002";
  for (auto& p : {dead, mine, other, step}) fs::create_directories(p);
  write_file_atomic((dead / "model.safetensors").string(), std::string(1000, 'x'));
  StaleRemoval r = remove_stale_temporaries(d.string());
  EXPECT_EQ(r.dirs, 1);
  EXPECT_EQ(r.bytes, 1000u);
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(mine));  // pid 1 is running
  EXPECT_TRUE(fs::exists(other));
  EXPECT_TRUE(fs::exists(step));
  fs::remove_all(d);
}

TEST(OmpExceptionTrap, BadAllocInAThreadIsRethrownAfterTheRegion) {
  cpu::OmpExceptionTrap trap;
  int done = 0;
#pragma omp parallel num_threads(4) reduction(+ : done)
  {
    bool ok = trap.run([&] {
      if (omp_get_thread_num() == 1) throw std::bad_alloc();
    });
#pragma omp for
    for (int i = 0; i < 8; i++)
      if (ok) done++;
  }
  EXPECT_THROW(trap.rethrow(), std::bad_alloc);
  EXPECT_LE(done, 8);
}
