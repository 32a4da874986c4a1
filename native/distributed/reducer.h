// Gradient averaging as torch.nn.parallel.DistributedDataParallel does it: parameters in buckets of about
// `bucketMb` MB (in reverse registration order, the order backward produces them; the first bucket 1 MB), an
// autograd hook per parameter copies its gradient into its bucket (pre-divided by the world size), and a bucket
// is all-reduced asynchronously as soon as all its gradients are in, in bucket order on every rank, so that
// communication overlaps the rest of backward. finish() waits and writes the averages back into `.grad`.
#pragma once
#include <ATen/ATen.h>

#include <chrono>
#include <memory>
#include <vector>

#include "distributed/group.h"

namespace tssl::dist {

class GradReducer {
 public:
  GradReducer(std::vector<at::Tensor> params, Group& group, int64_t bucketMb);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;
  /// Before backward.
  void begin();
  /// After backward: launches the buckets still waiting (a parameter without a gradient contributes zeros),
  /// waits for all, and sets each parameter's `.grad` to the average over ranks.
  void finish();
  size_t buckets() const { return buckets_.size(); }
  /// Time spent in finish() waiting for communication that backward did not hide (ms, last step), and the
  /// time from the first launch to the end of the wait.
  double exposedMs() const { return exposedMs_; }
  double commMs() const { return commMs_; }

 private:
  struct Bucket {
    at::Tensor flat;
    std::vector<size_t> params;
    std::vector<int64_t> offsets;
    size_t ready = 0;
    std::unique_ptr<Pending> work;
  };
  void onGrad(size_t param, const at::Tensor& grad);
  void launchReady();
  void launch(Bucket& b);

  std::vector<at::Tensor> params_;
  Group& group_;
  at::Scalar scale_;  // 1 / world size
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucketOf_, slotOf_;
  std::vector<bool> got_;
  std::vector<unsigned> hooks_;
  size_t nextLaunch_ = 0;
  double exposedMs_ = 0, commMs_ = 0;
  std::chrono::steady_clock::time_point firstLaunch_;
  bool launched_ = false;
};

}  // namespace tssl::dist
