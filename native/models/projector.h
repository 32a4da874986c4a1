// Projector heads as solo-learn builds them: an nn.Sequential of Linear [BN] ReLU blocks ending in a
// Linear, so parameter names are `<index>.weight`, `<index>.running_mean`, … and, under the `projector.`
// prefix, interchange with solo-learn checkpoints (VICReg: 0 Linear, 1 BN, 2 ReLU, 3 Linear, 4 BN, 5 ReLU,
// 6 Linear; SimCLR: 0 Linear, 1 ReLU, 2 Linear).
#pragma once
#include <torch/nn/modules/container/sequential.h>

#include <vector>

namespace tssl {

struct ProjectorOptions {
  int64_t inputDim = 512;
  std::vector<int64_t> hiddenDims{2048, 2048};  // one Linear [+ BN] + ReLU block per entry
  int64_t outputDim = 2048;
  bool batchNorm = true;
};

torch::nn::Sequential makeProjector(const ProjectorOptions& options);

}  // namespace tssl
