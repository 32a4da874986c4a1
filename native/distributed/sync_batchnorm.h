// SyncBatchNorm (torch.nn.SyncBatchNorm's semantics) for the layers of models/batch_norm.h: batch statistics
// over every rank's batch (per-rank mean and sum of squared deviations gathered and combined), running
// statistics updated with the global unbiased variance, and a backward whose per-channel sums of the incoming
// gradient (Σdy, Σdy·(x−μ)) are all-reduced; the affine gradients stay local (DDP averages them).
#pragma once
#include "distributed/group.h"
#include "models/batch_norm.h"

namespace tssl::dist {

class SyncBatchNorm final : public BatchNormOverride {
 public:
  explicit SyncBatchNorm(Group& group) : group_(group) {}
  at::Tensor forward(const at::Tensor& x, BatchNormState& layer) override;

 private:
  Group& group_;
};

}  // namespace tssl::dist
