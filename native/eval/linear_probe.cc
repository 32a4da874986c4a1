#include "eval/linear_probe.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "eval/check.h"

namespace tssl::eval {

namespace {

struct Accuracy {
  double top1, top5;
};

Accuracy accuracy(const at::Tensor& logits, const at::Tensor& labels) {
  const int64_t width = std::min<int64_t>(5, logits.size(1));
  at::Tensor hits = std::get<1>(logits.topk(width, 1, true, true)).eq(labels.unsqueeze(1));
  const double n = static_cast<double>(labels.size(0));
  return {100.0 * hits.narrow(1, 0, 1).sum().item<double>() / n, 100.0 * hits.sum().item<double>() / n};
}

}  // namespace

LinearProbeResult linearProbe(const at::Tensor& trainIn, const at::Tensor& trainLabelsIn, const at::Tensor& testIn, const at::Tensor& testLabelsIn,
                              const LinearProbeOptions& o) {
  checkFeatures(trainIn, "trainFeatures");
  checkFeatures(testIn, "testFeatures");
  TSSL_CHECK(trainIn.size(1) == testIn.size(1), "ERR_TORCH_SHAPE", "trainFeatures have ", trainIn.size(1), " dimensions but testFeatures have ",
             testIn.size(1));
  TSSL_CHECK(o.epochs >= 1, "ERR_INVALID_ARG", "epochs must be >= 1, got ", o.epochs);
  TSSL_CHECK(o.batchSize >= 1, "ERR_INVALID_ARG", "batchSize must be >= 1, got ", o.batchSize);
  TSSL_CHECK(std::isfinite(o.lr) && o.lr > 0, "ERR_INVALID_ARG", "lr must be > 0, got ", o.lr);
  at::Tensor trainLabels = checkLabels(trainLabelsIn, trainIn, "trainLabels", 0);
  at::Tensor testLabels = checkLabels(testLabelsIn, testIn, "testLabels", 0).to(trainIn.device());
  const int64_t numClasses = std::max(trainLabels.max().item<int64_t>(), testLabels.max().item<int64_t>()) + 1;

  at::Tensor train = trainIn.to(at::kFloat), test = testIn.to(trainIn.device(), at::kFloat);
  if (o.standardize) {
    at::Tensor mean = train.mean(0, true);
    at::Tensor std = train.std(0, /*unbiased=*/false, true).clamp_min(1e-6);
    train = (train - mean) / std;
    test = (test - mean) / std;
  }
  const int64_t n = train.size(0), d = train.size(1);
  auto opts = train.options();
  // The objective is convex: zero initialisation makes runs reproducible without affecting the optimum.
  at::Tensor weight = at::zeros({numClasses, d}, opts), bias = at::zeros({numClasses}, opts);
  at::Tensor bufW = at::zeros_like(weight), bufB = at::zeros_like(bias);
  at::Tensor eye = at::eye(numClasses, opts);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);

  LinearProbeResult r;
  r.numClasses = numClasses;
  bool firstStep = true;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    TSSL_CHECK(!(o.shouldStop && o.shouldStop()), "ERR_ABORTED", "the linear probe was aborted");
    // torch.optim.lr_scheduler.CosineAnnealingLR(T_max = epochs), stepped once per epoch.
    const double lr = o.lr * 0.5 * (1.0 + std::cos(M_PI * static_cast<double>(epoch) / static_cast<double>(o.epochs)));
    at::Tensor order = at::randperm(n, gen, at::kLong).to(train.device());
    double lossSum = 0;
    int64_t correct = 0;
    for (int64_t start = 0; start < n; start += o.batchSize) {
      const int64_t b = std::min(o.batchSize, n - start);
      at::Tensor idx = order.narrow(0, start, b);
      at::Tensor x = train.index_select(0, idx), y = trainLabels.index_select(0, idx);
      at::Tensor logits = at::addmm(bias, x, weight.t());
      at::Tensor logProb = at::log_softmax(logits, 1);
      lossSum += -logProb.gather(1, y.unsqueeze(1)).sum().item<double>();
      correct += logits.argmax(1).eq(y).sum().item<int64_t>();
      // d(mean cross-entropy)/d logits = (softmax − onehot) / b.
      at::Tensor g = (logProb.exp() - eye.index_select(0, y)).div_(static_cast<double>(b));
      at::Tensor gradW = at::mm(g.t(), x).add_(weight, o.weightDecay);
      at::Tensor gradB = g.sum(0).add_(bias, o.weightDecay);
      // torch.optim.SGD: the momentum buffer starts as the first gradient.
      if (firstStep) {
        bufW.copy_(gradW);
        bufB.copy_(gradB);
        firstStep = false;
      } else {
        bufW.mul_(o.momentum).add_(gradW);
        bufB.mul_(o.momentum).add_(gradB);
      }
      weight.add_(bufW, -lr);
      bias.add_(bufB, -lr);
    }
    EpochRecord rec{epoch + 1, lr, lossSum / static_cast<double>(n), 100.0 * static_cast<double>(correct) / static_cast<double>(n), std::nan("")};
    if (o.evalEveryEpoch || epoch + 1 == o.epochs) {
      Accuracy a = accuracy(at::addmm(bias, test, weight.t()), testLabels);
      rec.testTop1 = a.top1;
      r.top1 = a.top1;
      r.top5 = a.top5;
    }
    TSSL_CHECK(std::isfinite(rec.loss), "ERR_TORCH_VALUE", "the linear probe diverged at epoch ", epoch + 1, " (loss is not finite); lower lr");
    r.history.push_back(rec);
  }
  r.weight = weight;
  r.bias = bias;
  return r;
}

}  // namespace tssl::eval
