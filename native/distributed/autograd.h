// The differentiable collectives the losses use across ranks, as solo-learn defines them (solo/utils/misc.py
// GatherLayer; solo/losses/barlow.py's all-reduced cross-correlation).
#pragma once
#include <ATen/ATen.h>

#include "distributed/group.h"

namespace tssl::dist {

/// Every rank's `x` concatenated along dim 0 in rank order. Backward: the gradients of the gathered tensor are
/// summed over ranks (all-reduce) and this rank's slice is returned.
at::Tensor gatherWithGrad(const at::Tensor& x, Group& group);

/// The mean of `x` over ranks. Backward: the incoming gradient reaches the local `x` divided by the world size
/// (solo-learn all-reduces the Barlow Twins correlation outside autograd, then divides it by the world size).
at::Tensor meanWithLocalGrad(const at::Tensor& x, Group& group);

}  // namespace tssl::dist
