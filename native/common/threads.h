// LibTorch's intra-op thread count is thread-local state: a count set on the JS thread does nothing for a
// libuv worker or a training thread. Every native job calls applyThreads() on the thread that does the work.
#pragma once

namespace tssl {

/// Threads wanted for intra-op parallelism; 0 means "all cores" (std::thread::hardware_concurrency).
void setDesiredThreads(int n);
int desiredThreads();
/// Applies desiredThreads() on the calling thread if it differs from what was applied there before.
void applyThreads();
/// Limits only the calling thread's intra-op parallelism (e.g. the augmentation producer), leaving the
/// process-wide default that other threads initialise from untouched.
void limitThisThread(int n);

/// Lowers the calling thread's scheduling priority by `niceDelta` (Linux per-thread nice; threads it
/// creates afterwards, e.g. OpenMP workers, inherit it). Long native jobs use it so that the Node event
/// loop wins the CPU when both want it. A no-op where unsupported.
void lowerThisThreadPriority(int niceDelta);

}  // namespace tssl
