// A data-parallel process group over PyTorch's own distributed engine (c10d): TCPStore rendezvous as torchrun
// does it, ProcessGroupGloo on CPU and ProcessGroupNCCL on CUDA builds. The c10d and gloo headers stay in
// group.cc; the trainer, the losses and the gradient reducer see only this interface.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tssl::dist {

/// One rank's place in the job. The binding fills every field from lib/distributed.ts toNativeDist (`dist` or
/// torchrun's environment variables); nothing here has a default.
struct DistOptions {
  int64_t rank{}, worldSize{}, localRank{};
  std::string masterAddr;
  int64_t masterPort{};
  std::string backend;            // gloo | nccl
  double timeoutSec{};            // collectives (a stalled peer)
  double rendezvousTimeoutSec{};  // every rank must arrive within this
  std::string configDigest;       // the run's config without its rank fields: every rank must agree
  bool syncBatchNorm{};
  int64_t bucketMb{};
};

/// A collective in flight; wait() rethrows its failure as ERR_DISTRIBUTED.
class Pending {
 public:
  virtual ~Pending() = default;
  virtual void wait() = 0;
};

class Group {
 public:
  virtual ~Group() = default;
  virtual int64_t rank() const = 0;
  virtual int64_t size() const = 0;
  /// In-place sum over ranks.
  virtual void allReduceSum(at::Tensor& t) = 0;
  virtual std::unique_ptr<Pending> allReduceSumAsync(at::Tensor& t) = 0;
  /// In-place: every rank gets `root`'s values.
  virtual void broadcast(at::Tensor& t, int64_t root) = 0;
  /// Every rank's `t` (same shape everywhere) concatenated along dim 0, in rank order.
  virtual at::Tensor allGather(const at::Tensor& t) = 0;
  /// True on every rank when `local` is true on any (a stop agreed on by all).
  virtual bool any(bool local) = 0;
};

/// Rendezvous: rank 0 serves the TCPStore at masterAddr:masterPort; each rank announces itself with its world
/// size and config digest; every rank waits for all of them (ERR_DISTRIBUTED naming the missing ranks on
/// time-out, the first disagreeing rank on a mismatch), then the backend connects.
std::shared_ptr<Group> connect(const DistOptions& options, const at::Device& device);

/// The backends this build can use: gloo, and nccl in a CUDA build whose LibTorch has c10d NCCL.
std::vector<std::string> backends();

}  // namespace tssl::dist
