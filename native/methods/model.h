// The model a method trains, its modules registered under solo-learn's names so that named_parameters() gives
// `backbone.layer1.0.conv1.weight`, `projector.0.weight`, `predictor.0.weight`, `classifier.weight`,
// `momentum_backbone.…`, `momentum_projector.…`. The method says which heads it needs (Heads); the teacher copies
// start equal to the online modules and never take gradients (solo-learn's initialize_momentum_params).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/projector.h"
#include "models/resnet.h"

namespace tssl::methods {

/// A module's parameters that take gradients (requires_grad), in registration order.
std::vector<at::Tensor> trainableParameters(torch::nn::Module& m);

/// The heads a method needs beyond the backbone and the projector.
struct Heads {
  bool predictor = false;  // online predictor after the projector (BYOL, MoCo v3, SimSiam, NNCLR)
  bool teacher = false;    // momentum_backbone (+ momentum_projector), updated by EMA after each step
  bool projector = true;   // false: the method brings its own head (DINO's `head`)
};

struct ModelSpec {
  ResNetOptions backbone;
  ProjectorOptions projector;  // inputDim is the backbone's feature width
  ProjectorOptions predictor;  // used when heads.predictor; inputDim is the projector's output width
  Heads heads;
  int64_t numClasses = 0;  // > 0: solo-learn's online linear classifier on detached features
  int64_t worldSize = 1;   // data-parallel ranks (SwAV's queue holds queueSize / worldSize per rank)
};

struct MethodModel : torch::nn::Module {
  /// Builds backbone, projector, predictor, classifier and teacher copies; a method's own modules follow
  /// (Method::addModules), then startTeacher().
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
  /// A method's own module or buffer holder, registered under `name` (solo-learn's attribute name).
  template <class M>
  std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> m) {
    register_module(name, m);
    extras_[name] = m;
    return m;
  }
  /// The method's module registered as `name` (ERR_TORCH_SHAPE if there is none of that type).
  template <class M>
  M& extra(const std::string& name) const {
    auto it = extras_.find(name);
    M* m = it == extras_.end() ? nullptr : dynamic_cast<M*>(it->second.get());
    if (!m) missing("module", name);
    return *m;
  }
  /// The buffer registered on the model itself as `name` (NNCLR's and SwAV's queues); ERR_TORCH_SHAPE if none.
  at::Tensor buffer(const std::string& name) const;
  /// Declares `teacher` (a registered module) the EMA copy of `student` (DINO: momentum_head of head).
  void addPair(const std::string& teacher, const std::string& student) { pairs_.emplace_back(teacher, student); }
  /// Every teacher starts as a copy of its student and takes no gradient (initialize_momentum_params).
  void startTeacher();
  /// The state-dict prefixes of the modules this model holds, in registration order.
  std::vector<std::string> modules() const;

 private:
  [[noreturn]] static void missing(const char* what, const std::string& name);
  std::map<std::string, std::shared_ptr<torch::nn::Module>> extras_;
  std::vector<std::pair<std::string, std::string>> pairs_;  // (teacher, student) module names
};

}  // namespace tssl::methods
