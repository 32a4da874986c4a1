#include "distributed/autograd.h"

#include <torch/autograd.h>

namespace tssl::dist {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

Group& groupOf(AutogradContext* ctx) { return *reinterpret_cast<Group*>(ctx->saved_data["group"].toInt()); }

struct GatherFn : public torch::autograd::Function<GatherFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    ctx->saved_data["rows"] = x.size(0);
    Group& g = *reinterpret_cast<Group*>(group);
    return {g.allGather(x.detach())};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Group& g = groupOf(ctx);
    at::Tensor sum = grads[0].contiguous().clone();
    g.allReduceSum(sum);
    const int64_t rows = ctx->saved_data["rows"].toInt();
    return {sum.narrow(0, g.rank() * rows, rows), at::Tensor()};
  }
};

}  // namespace

at::Tensor gatherWithGrad(const at::Tensor& x, Group& group) {
  if (group.size() == 1) return x;
  return GatherFn::apply(x, reinterpret_cast<int64_t>(&group))[0];
}

at::Tensor meanWithLocalGrad(const at::Tensor& x, Group& group) {
  at::Tensor local = x.detach().contiguous().clone();
  group.allReduceSum(local);
  // value: Σ_r x_r / W; gradient to x: 1/W (x − x.detach() is zero in value and carries x's gradient).
  return (local + (x - x.detach())) / double(group.size());
}

}  // namespace tssl::dist
