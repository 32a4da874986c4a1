// What bindings other than module.cc need from a JS NativeModule handle (the feature extractor runs the
// backbone and projector on its own worker).
#pragma once
#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <mutex>

#include "bindings/common.h"

namespace tssl::bindings {

struct ModuleAccess {
  std::shared_ptr<torch::nn::Module> module;
  /// The handle's mutex (aliasing its state, which it keeps alive): passes on one module are serialised.
  std::shared_ptr<std::mutex> mutex;
  std::function<at::Tensor(const at::Tensor&)> forward;
  std::function<at::Tensor(const at::Tensor&)> featureMap;  // empty unless a ResNet
  std::string kind;
};

/// The module behind a JS NativeModule; throws ERR_INVALID_ARG / ERR_DISPOSED naming `what`.
ModuleAccess unwrapModule(Napi::Env env, const Napi::Value& v, const char* what);

}  // namespace tssl::bindings
