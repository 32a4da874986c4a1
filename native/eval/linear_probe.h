// Linear probe on frozen features: a linear classifier trained with mini-batch SGD (momentum, weight decay,
// cosine learning-rate decay per epoch) on softmax cross-entropy; the protocol of EMP-SSL's evaluate.py
// (docs/features.md, linear probe) with features standardised by the train set's statistics by default.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <vector>

namespace tssl::eval {

struct LinearProbeOptions {
  // Set by the caller (defaults: LINEAR_PROBE_DEFAULTS in lib/eval.ts).
  int64_t epochs{};
  double lr{};
  int64_t batchSize{};
  double momentum{};
  double weightDecay{};
  /// Subtract the train mean and divide by the train std (per dimension) before training and testing.
  bool standardize{};
  uint64_t seed{};
  /// Evaluate the test set after every epoch (history); the reported accuracy is always the last epoch's.
  bool evalEveryEpoch{};
  /// Polled between epochs; returning true stops the run with ERR_ABORTED.
  std::function<bool()> shouldStop;
};

struct EpochRecord {
  int64_t epoch;
  double lr, loss, trainTop1, testTop1;
};

struct LinearProbeResult {
  double top1 = 0, top5 = 0;
  std::vector<EpochRecord> history;
  at::Tensor weight, bias;  // (C, D), (C,) in the (standardised) feature space
  int64_t numClasses = 0;
};

LinearProbeResult linearProbe(const at::Tensor& trainFeatures, const at::Tensor& trainLabels, const at::Tensor& testFeatures,
                              const at::Tensor& testLabels, const LinearProbeOptions& options);

}  // namespace tssl::eval
