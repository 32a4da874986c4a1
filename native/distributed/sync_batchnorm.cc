#include "distributed/sync_batchnorm.h"

#include <torch/autograd.h>

#include "common/error.h"

namespace tssl::dist {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::vector<int64_t> reduceDims(const at::Tensor& x) {
  std::vector<int64_t> d{0};
  for (int64_t i = 2; i < x.dim(); ++i) d.push_back(i);
  return d;
}
std::vector<int64_t> channelShape(const at::Tensor& x) {
  std::vector<int64_t> s(static_cast<size_t>(x.dim()), 1);
  s[1] = x.size(1);
  return s;
}

// Inputs: x, weight, bias, and the global mean / invstd / count computed outside (no gradient through them:
// their gradient is folded into the backward below, as PyTorch's SyncBatchNorm does).
struct SyncBatchNormFn : public torch::autograd::Function<SyncBatchNormFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& mean,
                               const at::Tensor& invstd, double count, int64_t group) {
    const auto shape = channelShape(x);
    at::Tensor xf = x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble ? x : x.to(at::kFloat);
    at::Tensor y = (xf - mean.view(shape)) * invstd.view(shape);
    if (weight.defined()) y = y * weight.view(shape) + bias.view(shape);
    ctx->save_for_backward({xf, weight, mean, invstd});
    ctx->saved_data["count"] = count;
    ctx->saved_data["group"] = group;
    ctx->saved_data["dtype"] = static_cast<int64_t>(x.scalar_type());
    return {y.to(x.scalar_type())};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &xf = saved[0], &weight = saved[1], &mean = saved[2], &invstd = saved[3];
    const double count = ctx->saved_data["count"].toDouble();
    Group& group = *reinterpret_cast<Group*>(ctx->saved_data["group"].toInt());
    const auto shape = channelShape(xf);
    const auto dims = reduceDims(xf);
    at::Tensor dy = grads[0].to(xf.scalar_type());
    at::Tensor xmu = xf - mean.view(shape);
    at::Tensor sumDy = dy.sum(dims);
    at::Tensor sumDyXmu = (dy * xmu).sum(dims);
    at::Tensor gradWeight, gradBias;
    if (weight.defined()) {
      gradWeight = sumDyXmu * invstd;  // local: DDP averages the affine gradients over ranks
      gradBias = sumDy.clone();
    }
    at::Tensor both = at::cat({sumDy, sumDyXmu}).contiguous();
    group.allReduceSum(both);
    const int64_t c = xf.size(1);
    at::Tensor meanDy = both.narrow(0, 0, c) / count, meanDyXmu = both.narrow(0, c, c) / count;
    at::Tensor scale = weight.defined() ? invstd * weight : invstd;
    at::Tensor dx = (dy - meanDy.view(shape) - xmu * (invstd * invstd * meanDyXmu).view(shape)) * scale.view(shape);
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    return {dx.to(dtype), gradWeight, gradBias, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor SyncBatchNorm::forward(const at::Tensor& x, BatchNormState& s) {
  TSSL_CHECK(x.dim() >= 2, "ERR_TORCH_SHAPE", "SyncBatchNorm: expected (N, C, ...), got ", shapeString(x.sizes().vec()));
  const int64_t c = x.size(1);
  const auto dims = reduceDims(x);
  at::Tensor mean, invstd;
  double count = 0;
  {
    at::NoGradGuard ng;
    at::Tensor xf = x.detach().to(at::kFloat);
    const double local = double(x.numel() / c);
    at::Tensor m = xf.mean(dims);
    at::Tensor m2 = (xf - m.view(channelShape(x))).pow(2).sum(dims);
    at::Tensor pack = at::cat({at::full({1}, local, m.options()), m, m2}).unsqueeze(0);
    at::Tensor all = group_.allGather(pack);  // (W, 1 + 2C): count, mean, M2 per rank
    at::Tensor counts = all.select(1, 0).unsqueeze(1), means = all.narrow(1, 1, c), m2s = all.narrow(1, 1 + c, c);
    const at::Tensor n = counts.sum();
    count = n.item<double>();
    TSSL_CHECK(count > 1, "ERR_TORCH_SHAPE", "SyncBatchNorm: expected more than 1 value per channel over all ranks, got ", count);
    mean = (counts * means).sum(0) / n;
    at::Tensor var = (m2s + counts * (means - mean).pow(2)).sum(0) / n;
    invstd = at::rsqrt(var + s.eps);
    if (s.runningMean.defined()) {
      s.numBatchesTracked.add_(1);
      const double momentum = s.momentum ? *s.momentum : 1.0 / s.numBatchesTracked.item<double>();
      s.runningMean.mul_(1 - momentum).add_(mean.to(s.runningMean.scalar_type()), momentum);
      s.runningVar.mul_(1 - momentum).add_((var * (count / (count - 1))).to(s.runningVar.scalar_type()), momentum);
    }
  }
  return SyncBatchNormFn::apply(x, s.weight, s.bias, mean, invstd, count, reinterpret_cast<int64_t>(&group_))[0];
}

}  // namespace tssl::dist
