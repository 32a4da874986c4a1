// Projector and predictor heads as solo-learn builds them: an nn.Sequential of Linear [BN] ReLU blocks ending in
// a Linear [and an affine-free BN], so parameter names are `<index>.weight`, `<index>.running_mean`, … and, under
// the `projector.` / `predictor.` prefixes, interchange with solo-learn checkpoints (VICReg: 0 Linear, 1 BN,
// 2 ReLU, 3 Linear, 4 BN, 5 ReLU, 6 Linear; SimCLR: 0 Linear, 1 ReLU, 2 Linear; MoCo v3: bias-free Linears and
// a final BatchNorm1d(affine=False); SimSiam: its output Linear's bias kept but frozen, as solo-learn does).
#pragma once
#include <torch/nn/modules/container/sequential.h>

#include <vector>

namespace tssl {

/// A head's layout. No defaults: the caller sets every field (bindings/options.h parseHead from the heads that
/// lib/methods/presets.ts fills; inputDim from the backbone or the projector).
struct ProjectorOptions {
  int64_t inputDim{};
  std::vector<int64_t> hiddenDims;  // one Linear [+ BN] + ReLU block per entry
  int64_t outputDim{};
  bool batchNorm{};
  bool hiddenBias{};  // the hidden Linears' bias (MoCo v3 / SimSiam: none, a BN follows)
  /// The output Linear's bias: on, off, or present but frozen (requires_grad false: SimSiam's projector).
  enum class OutputBias { On, Off, Frozen } outputBias = OutputBias::On;
  bool outputBatchNorm{};        // a final BatchNorm1d (MoCo v3 / SimSiam projectors: affine=False)
  bool outputBatchNormAffine{};  // that BatchNorm1d with weight and bias (NNCLR's projector)
  bool gelu{};                   // GELU instead of ReLU between the layers (DINO's head)
};

torch::nn::Sequential makeProjector(const ProjectorOptions& options);

}  // namespace tssl
