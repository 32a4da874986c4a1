#include "common/threads.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <thread>

namespace tssl {
namespace {
std::atomic<int> desired{0};
thread_local int applied = -1;
}  // namespace

void setDesiredThreads(int n) { desired.store(n < 0 ? 0 : n); }

int desiredThreads() {
  int n = desired.load();
  if (n > 0) return n;
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

void applyThreads() {
  int n = desiredThreads();
  if (applied != n) {
    at::set_num_threads(n);
    applied = n;
  }
}

}  // namespace tssl
