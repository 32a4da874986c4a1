#include "models/projector.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>

#include "common/error.h"

namespace tssl {

torch::nn::Sequential makeProjector(const ProjectorOptions& o) {
  TSSL_CHECK(o.inputDim > 0 && o.outputDim > 0, "ERR_INVALID_ARG", "projector dimensions must be positive");
  torch::nn::Sequential seq;
  int64_t in = o.inputDim;
  for (int64_t h : o.hiddenDims) {
    TSSL_CHECK(h > 0, "ERR_INVALID_ARG", "projector hidden dimensions must be positive, got ", h);
    seq->push_back(torch::nn::Linear(torch::nn::LinearOptions(in, h).bias(o.hiddenBias)));
    if (o.batchNorm) seq->push_back(torch::nn::BatchNorm1d(h));
    if (o.gelu) seq->push_back(torch::nn::GELU());
    else seq->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
    in = h;
  }
  torch::nn::Linear out(torch::nn::LinearOptions(in, o.outputDim).bias(o.outputBias != ProjectorOptions::OutputBias::Off));
  if (o.outputBias == ProjectorOptions::OutputBias::Frozen) out->bias.set_requires_grad(false);
  seq->push_back(out);
  if (o.outputBatchNorm) seq->push_back(torch::nn::BatchNorm1d(torch::nn::BatchNormOptions(o.outputDim).affine(o.outputBatchNormAffine)));
  return seq;
}

}  // namespace tssl
