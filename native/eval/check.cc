#include "eval/check.h"

#include "common/error.h"

namespace tssl::eval {

void checkFeatures(const at::Tensor& f, const char* name) {
  TSSL_CHECK(f.defined(), "ERR_INVALID_ARG", name, " is undefined");
  TSSL_CHECK(f.dim() == 2, "ERR_TORCH_SHAPE", name, " must be a (N, D) matrix but has shape ", shapeString(f.sizes().vec()));
  TSSL_CHECK(f.size(0) > 0 && f.size(1) > 0, "ERR_TORCH_SHAPE", name, " is empty: shape ", shapeString(f.sizes().vec()));
  TSSL_CHECK(f.is_floating_point(), "ERR_TORCH_DTYPE", name, " must be floating point but is ", c10::toString(f.scalar_type()));
  TSSL_CHECK(at::isfinite(f).all().item<bool>(), "ERR_TORCH_VALUE", name, " contains NaN or infinite values");
}

at::Tensor checkLabels(const at::Tensor& labels, const at::Tensor& features, const char* name, int64_t minLabel) {
  TSSL_CHECK(labels.defined(), "ERR_INVALID_ARG", name, " is undefined");
  TSSL_CHECK(!labels.is_floating_point() && !labels.is_complex() && labels.scalar_type() != at::kBool, "ERR_TORCH_DTYPE", name,
             " must be integer class indices but is ", c10::toString(labels.scalar_type()));
  at::Tensor l = labels.dim() == 2 && labels.size(1) == 1 ? labels.reshape({-1}) : labels;
  TSSL_CHECK(l.dim() == 1, "ERR_TORCH_SHAPE", name, " must have shape (N,) but has ", shapeString(labels.sizes().vec()));
  TSSL_CHECK(l.size(0) == features.size(0), "ERR_TORCH_SHAPE", name, " has ", l.size(0), " labels but the features have ", features.size(0), " rows");
  l = l.to(features.device(), at::kLong);
  const int64_t lo = l.min().item<int64_t>();
  TSSL_CHECK(lo >= minLabel, "ERR_TORCH_VALUE", name, " contains the label ", lo, "; class indices must be >= ", minLabel);
  return l;
}

}  // namespace tssl::eval
