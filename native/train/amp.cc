#include "train/amp.h"

#include <cmath>

#include "common/error.h"
#include "common/torch_compat.h"

namespace tssl::train {

Precision parsePrecision(const std::string& s) {
  if (s == "32" || s == "32-true") return Precision::F32;
  if (s == "16-mixed") return Precision::F16Mixed;
  if (s == "bf16-mixed") return Precision::BF16Mixed;
  throw Error("ERR_CONFIG", "precision must be '32', '16-mixed' or 'bf16-mixed', got '" + s + "'");
}

AutocastScope::AutocastScope(c10::DeviceType device, at::ScalarType dtype) : device_(device) {
  TSSL_CHECK(device == c10::DeviceType::CPU || device == c10::DeviceType::CUDA, "ERR_CONFIG", "mixed precision runs on cpu and cuda devices, not ",
             c10::DeviceTypeName(device));
  prevEnabled_ = compat::autocastEnabled(device);
  prevDtype_ = compat::autocastDtype(device);
  compat::setAutocast(device, true, dtype);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  compat::setAutocast(device_, prevEnabled_, prevDtype_);
}

at::Tensor GradScaler::scaleLoss(const at::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }

bool GradScaler::unscale(const std::vector<at::Tensor>& params) const {
  if (!enabled_) return true;
  std::vector<at::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return true;
  // As GradScaler: the reciprocal in double, applied in float32.
  const float inv = static_cast<float>(1.0 / scale_);
  if (grads.front().is_cuda()) {
    // One fused kernel per dtype/device group on CUDA, as torch.cuda.amp does.
    at::Tensor found = at::zeros({1}, grads.front().options().dtype(at::kFloat));
    at::Tensor invT = at::full({1}, inv, grads.front().options().dtype(at::kFloat));
    at::_amp_foreach_non_finite_check_and_unscale_(grads, found, invT);
    return found.item<float>() == 0.0f;
  }
  at::NoGradGuard g;
  std::vector<at::Tensor> finite;
  finite.reserve(grads.size());
  for (auto& gr : grads) {
    finite.push_back(at::isfinite(gr).all());  // checked before unscaling, as the torch kernel does
    gr.mul_(inv);
  }
  return at::stack(finite).all().item<bool>();
}

void GradScaler::update(bool foundInf) {
  if (!enabled_) return;
  if (foundInf) {
    scale_ *= o_.backoffFactor;
    tracker_ = 0;
    return;
  }
  const int64_t successful = tracker_ + 1;
  if (successful >= o_.growthInterval) {  // >=: a resumed tracker may exceed a smaller interval
    const double grown = scale_ * o_.growthFactor;
    // torch keeps the scale in float32: growth stops where float32 would overflow.
    if (std::isfinite(static_cast<float>(grown))) scale_ = grown;
    tracker_ = 0;
  } else {
    tracker_ = successful;
  }
}

}  // namespace tssl::train
