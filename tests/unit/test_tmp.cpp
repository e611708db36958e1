// Removes test_tmp_root() after the process's last test (see test_tmp.h).
#include "test_tmp.h"

#include <gtest/gtest.h>

namespace {

struct RemoveTestTmpRoot : ::testing::Environment {
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(mindllm_test::test_tmp_root(), ec);
  }
};

const auto* const registered = ::testing::AddGlobalTestEnvironment(new RemoveTestTmpRoot);

}  // namespace
