// Input validation shared by the evaluation protocols (kNN, linear probe): every problem a user can cause
// becomes a tssl::Error naming the argument.
#pragma once
#include <ATen/ATen.h>

namespace tssl::eval {

/// Checks a (N, D) finite floating-point feature matrix with N > 0.
void checkFeatures(const at::Tensor& features, const char* name);
/// Checks an (N,) integer label vector matching `features` and returns it as int64 on the features' device.
at::Tensor checkLabels(const at::Tensor& labels, const at::Tensor& features, const char* name, int64_t minLabel);

}  // namespace tssl::eval
