#include "methods/model.h"

#include <torch/autograd.h>

#include "common/error.h"

namespace tssl::methods {

MethodModel::MethodModel(const ModelSpec& s) {
  backbone = register_module("backbone", ResNet(s.backbone));
  ProjectorOptions p = s.projector;
  p.inputDim = backbone->featureDim();
  if (s.heads.projector) projector = register_module("projector", makeProjector(p));
  if (s.heads.predictor) {
    ProjectorOptions q = s.predictor;
    q.inputDim = p.outputDim;
    TSSL_CHECK(q.outputDim == p.outputDim, "ERR_CONFIG", "the predictor must map the projector's ", p.outputDim, "-d output back to ", p.outputDim,
               " dimensions, got outputDim ", q.outputDim);
    predictor = register_module("predictor", makeProjector(q));
  }
  if (s.numClasses > 0) classifier = register_module("classifier", torch::nn::Linear(backbone->featureDim(), s.numClasses));
  if (s.heads.teacher) {
    momentumBackbone = register_module("momentum_backbone", ResNet(s.backbone));
    pairs_.emplace_back("momentum_backbone", "backbone");
    if (s.heads.projector) {
      momentumProjector = register_module("momentum_projector", makeProjector(p));
      pairs_.emplace_back("momentum_projector", "projector");
    }
  }
}

void MethodModel::startTeacher() {
  at::NoGradGuard g;
  for (auto& [t, o] : momentumPairs()) {
    t.copy_(o);
    t.set_requires_grad(false);
  }
  // The teacher's BatchNorm buffers start as the student's too (both fresh: zeros / ones).
}

std::vector<at::Tensor> trainableParameters(torch::nn::Module& m) {
  std::vector<at::Tensor> out;
  for (auto& p : m.parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

std::vector<std::pair<at::Tensor, at::Tensor>> MethodModel::momentumPairs() {
  std::vector<std::pair<at::Tensor, at::Tensor>> out;
  const auto children = named_children();
  for (const auto& [teacher, student] : pairs_) {
    auto t = children[teacher]->parameters(), s = children[student]->parameters();
    TSSL_CHECK(t.size() == s.size(), "ERR_TORCH_SHAPE", teacher, " and ", student, " differ in parameter count");
    for (size_t i = 0; i < t.size(); ++i) out.emplace_back(t[i], s[i]);
  }
  return out;
}

at::Tensor MethodModel::buffer(const std::string& name) const {
  for (const auto& kv : named_buffers(false))
    if (kv.key() == name) return kv.value();
  missing("buffer", name);
}

void MethodModel::missing(const char* what, const std::string& name) {
  throw Error("ERR_TORCH_SHAPE", std::string("the model has no ") + what + " " + name);
}

std::vector<std::string> MethodModel::modules() const {
  std::vector<std::string> out;
  for (const auto& kv : named_children()) out.push_back(kv.key());
  return out;
}

}  // namespace tssl::methods
