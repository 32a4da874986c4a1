#include "common/threads.h"

#include <ATen/Parallel.h>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <thread>

// OpenMP's per-thread setter, when LibTorch's parallel backend is OpenMP (weak: absent otherwise).
extern "C" void omp_set_num_threads(int) __attribute__((weak));

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
    // get_num_threads() runs LibTorch's once-per-thread lazy initialisation now; otherwise the first
    // parallel kernel on this thread would re-initialise it from the process-wide value afterwards.
    at::get_num_threads();
    at::set_num_threads(n);
    applied = n;
  }
}

void limitThisThread(int n) {
  at::get_num_threads();
  // at::set_num_threads would also change the process-wide value other threads initialise from.
  if (omp_set_num_threads != nullptr) omp_set_num_threads(n < 1 ? 1 : n);
  applied = -1;
}

void lowerThisThreadPriority(int niceDelta) {
#if defined(__linux__) && defined(SYS_gettid)
  const id_t tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, tid);
  if (errno == 0) (void)setpriority(PRIO_PROCESS, tid, current + niceDelta);
#else
  (void)niceDelta;
#endif
}

}  // namespace tssl
