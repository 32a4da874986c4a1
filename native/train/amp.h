// Mixed precision for the trainer: autocast on the calling thread (CUDA fp16/bf16, CPU bf16) and a
// dynamic loss scaler with torch.cuda.amp.GradScaler's semantics (scale the loss, unscale the
// gradients, skip the optimizer step when any gradient is inf/NaN, back off / grow the scale).
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace tssl::train {

enum class Precision { F32, F16Mixed, BF16Mixed };

/// '32' | '16-mixed' | 'bf16-mixed' (Lightning's names); ERR_CONFIG otherwise.
Precision parsePrecision(const std::string& s);

/// Enables autocast for `device` with `dtype` on this thread while alive, as `with torch.autocast(...)`:
/// nesting counted, the cast cache cleared when the outermost scope ends, the previous state restored.
class AutocastScope {
 public:
  AutocastScope(c10::DeviceType device, at::ScalarType dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType device_;
  bool prevEnabled_ = false;
  at::ScalarType prevDtype_ = at::kFloat;
};

/// torch.cuda.amp.GradScaler's options; the values come from the TS schema (its defaults are PyTorch's).
struct GradScalerOptions {
  double initScale{}, growthFactor{}, backoffFactor{};
  int64_t growthInterval{};
};

class GradScaler {
 public:
  GradScaler(const GradScalerOptions& o, bool enabled) : o_(o), enabled_(enabled), scale_(o.initScale) {}
  bool enabled() const { return enabled_; }
  double scale() const { return scale_; }
  int64_t growthTracker() const { return tracker_; }
  void load(double scale, int64_t growthTracker) {
    scale_ = scale;
    tracker_ = growthTracker;
  }
  /// loss × scale (the loss itself when disabled).
  at::Tensor scaleLoss(const at::Tensor& loss) const;
  /// Divides every defined gradient by the scale in place; true when all of them are finite.
  bool unscale(const std::vector<at::Tensor>& params) const;
  /// After a step: backoff and reset the tracker when gradients were non-finite, else count a good step
  /// and grow the scale every growthInterval good steps (torch._amp_update_scale_).
  void update(bool foundInf);

 private:
  GradScalerOptions o_;
  bool enabled_;
  double scale_;
  int64_t tracker_ = 0;
};

}  // namespace tssl::train
