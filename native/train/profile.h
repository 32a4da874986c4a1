// Op-level profile of training steps, for bench/profile: LibTorch's CPU profiler (the legacy one, present in
// LibTorch 1.13 and 2.x alike, with input shapes) runs on the training thread for the profiled steps; its
// events are aggregated per (phase, op) with self time (the op's own time, nested ops excluded), so that the
// rows add up to the step. Phases are the trainer's user scopes (kPhase* below); FLOPs are counted where the
// shapes determine them (GEMMs; convolutions from their backward's grad_output), elements for the rest.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tssl::train {

inline constexpr const char* kPhaseWait = "tssl::wait_data";
inline constexpr const char* kPhaseForward = "tssl::forward";
inline constexpr const char* kPhaseLoss = "tssl::loss";
inline constexpr const char* kPhaseBackward = "tssl::backward";
inline constexpr const char* kPhaseOptimizer = "tssl::optimizer";
inline constexpr const char* kPhaseConvWeightGemm = "tssl::conv_weight_grad";  // models/conv.h, within backward

struct OpProfile {
  std::string phase;   // the innermost tssl:: scope around the op ("" outside every scope)
  std::string name;    // the op (aten::mkldnn_convolution), an autograd node, or a phase's own time
  std::string shapes;  // convolutions and GEMMs: their input shapes ("[128, 64, 32, 32] [64, 64, 3, 3]"), a row each
  int64_t calls = 0;
  double selfMs = 0, totalMs = 0;  // summed over the profiled steps
  double flops = 0;                // multiply-adds × 2, where the shapes determine them
  double elements = 0;             // Σ numel of the op's tensor inputs (a lower bound of the memory it moves)
};

class StepProfiler {
 public:
  /// Enables the profiler on the calling thread for one step.
  void begin();
  /// Disables it, folds the step's events into ops(); wallMs is the step's time as the trainer measured it
  /// (negative: no step ran, the events are dropped).
  void end(double wallMs);
  const std::vector<OpProfile>& ops() const { return ops_; }
  int64_t steps() const { return steps_; }
  double wallMs() const { return wallMs_; }

 private:
  std::vector<OpProfile> ops_;
  int64_t steps_ = 0;
  double wallMs_ = 0;
  bool active_ = false;
};

}  // namespace tssl::train
