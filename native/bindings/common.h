// Shared N-API glue: per-environment data, error mapping, tensor wrapping and Promise-returning workers.
// This folder is the only place that includes napi.h.
#pragma once
#include <napi.h>

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>

namespace tssl::bindings {

struct AddonData {
  Napi::FunctionReference tensorCtor;
  Napi::FunctionReference moduleCtor;
  Napi::FunctionReference optimizerCtor;
};

AddonData& addonData(Napi::Env env);

/// A native failure captured on any thread, turned into a JS Error (with `.code`) on the JS thread.
struct CapturedError {
  std::string code;
  std::string message;
};
/// Classifies the exception currently being handled (call inside a catch block).
CapturedError captureCurrentException();
Napi::Error toJsError(Napi::Env env, const CapturedError& e);
[[noreturn]] void throwJs(Napi::Env env, const std::string& code, const std::string& message);

/// Runs `body` converting any C++ exception into a thrown JS error.
template <typename F>
auto guarded(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw toJsError(env, captureCurrentException());
  }
}

/// Work for a libuv thread: runs off the JS thread and returns a builder of the JS result, which runs back
/// on the JS thread. Thread count is applied on the worker before the work runs.
using ResultBuilder = std::function<Napi::Value(Napi::Env)>;
using Work = std::function<ResultBuilder()>;
Napi::Promise runAsync(Napi::Env env, Work work);
Napi::Object init(Napi::Env env, Napi::Object exports);

/// Wraps an at::Tensor in a new JS NativeTensor handle.
Napi::Object wrapTensor(Napi::Env env, at::Tensor t);
/// The at::Tensor behind a JS NativeTensor handle; throws ERR_INVALID_ARG / ERR_DISPOSED naming `what`.
at::Tensor unwrapTensor(Napi::Env env, const Napi::Value& v, const char* what);

at::ScalarType parseDtype(Napi::Env env, const std::string& name);
std::string dtypeName(at::ScalarType t);
at::Device parseDevice(Napi::Env env, const std::string& name);

void initTensor(Napi::Env env, Napi::Object exports);
void initModule(Napi::Env env, Napi::Object exports);
void initLosses(Napi::Env env, Napi::Object exports);
void initOptim(Napi::Env env, Napi::Object exports);
void initFeatures(Napi::Env env, Napi::Object exports);  // features.cc and eval.cc
void initTrain(Napi::Env env, Napi::Object exports);     // train.cc and augment.cc

}  // namespace tssl::bindings
