// The model a method trains, its modules registered under solo-learn's names so that named_parameters() gives
// `backbone.layer1.0.conv1.weight`, `projector.0.weight`, `predictor.0.weight`, `classifier.weight`,
// `momentum_backbone.…`, `momentum_projector.…`. The method says which heads it needs (Heads); the teacher copies
// start equal to the online modules and never take gradients (solo-learn's initialize_momentum_params).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include <vector>

#include "models/projector.h"
#include "models/resnet.h"

namespace tssl::methods {

/// A module's parameters that take gradients (requires_grad), in registration order.
std::vector<at::Tensor> trainableParameters(torch::nn::Module& m);

/// The heads a method needs beyond the backbone and the projector.
struct Heads {
  bool predictor = false;  // online predictor after the projector (BYOL, MoCo v3, SimSiam)
  bool teacher = false;    // momentum_backbone + momentum_projector, updated by EMA after each step
};

struct ModelSpec {
  ResNetOptions backbone;
  ProjectorOptions projector;  // inputDim is the backbone's feature width
  ProjectorOptions predictor;  // used when heads.predictor; inputDim is the projector's output width
  Heads heads;
  int64_t numClasses = 0;  // > 0: solo-learn's online linear classifier on detached features
};

struct MethodModel : torch::nn::Module {
  explicit MethodModel(const ModelSpec& spec);
  ResNet backbone{nullptr};
  torch::nn::Sequential projector{nullptr}, predictor{nullptr};
  torch::nn::Linear classifier{nullptr};
  ResNet momentumBackbone{nullptr};
  torch::nn::Sequential momentumProjector{nullptr};
  bool hasTeacher() const { return !momentumBackbone.is_empty(); }
  /// The parameters the optimizer and the gradient reducer see (requires_grad): never the teacher's.
  std::vector<at::Tensor> trainableParameters() { return methods::trainableParameters(*this); }
  /// (teacher, student) parameter pairs in registration order, for the EMA.
  std::vector<std::pair<at::Tensor, at::Tensor>> momentumPairs();
  /// The state-dict prefixes of the modules this model holds, in registration order.
  std::vector<std::string> modules() const;
};

}  // namespace tssl::methods
