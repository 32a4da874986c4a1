// BatchNorm layers of the models go through batchNorm() / forwardSequential(): in training mode, a thread may
// install an override that normalises in their place (SyncBatchNorm over a data-parallel group, which the
// trainer installs on its own thread for the step). Without one, each layer runs its own forward.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>

#include <optional>

namespace tssl {

/// A BatchNorm layer's parameters and running statistics (updated in place by the override).
struct BatchNormState {
  at::Tensor weight, bias, runningMean, runningVar, numBatchesTracked;
  std::optional<double> momentum;  // none: cumulative average (PyTorch's momentum=None)
  double eps = 1e-5;
};

class BatchNormOverride {
 public:
  virtual ~BatchNormOverride() = default;
  virtual at::Tensor forward(const at::Tensor& x, BatchNormState& layer) = 0;
};

/// Installs `o` for the calling thread (nullptr removes it); returns the previous one.
BatchNormOverride* setBatchNormOverride(BatchNormOverride* o);
BatchNormOverride* batchNormOverride();

template <class Impl>
at::Tensor batchNorm(Impl& bn, const at::Tensor& x) {
  BatchNormOverride* o = batchNormOverride();
  if (!o || !bn.is_training()) return bn.forward(x);
  // c10::optional in LibTorch 1.13, std::optional in 2.x: copied field by field.
  const auto m = bn.options.momentum();
  BatchNormState s{bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.num_batches_tracked, std::nullopt, bn.options.eps()};
  if (m.has_value()) s.momentum = *m;
  return o->forward(x, s);
}

/// A Sequential's forward with its BatchNorm children through batchNorm() and its convolutions through
/// convolve() (models/conv.h).
at::Tensor forwardSequential(torch::nn::Sequential& seq, at::Tensor x);

/// Scoped install on this thread.
class BatchNormOverrideScope {
 public:
  explicit BatchNormOverrideScope(BatchNormOverride* o) : previous_(setBatchNormOverride(o)) {}
  ~BatchNormOverrideScope() { setBatchNormOverride(previous_); }
  BatchNormOverrideScope(const BatchNormOverrideScope&) = delete;
  BatchNormOverrideScope& operator=(const BatchNormOverrideScope&) = delete;

 private:
  BatchNormOverride* previous_;
};

}  // namespace tssl
