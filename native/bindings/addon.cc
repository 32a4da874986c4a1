#include <ATen/Parallel.h>
#include <ATen/Context.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <new>

#include "bindings/common.h"
#include "common/blas.h"
#include "common/cpu_allocator.h"
#include "common/device.h"
#include "common/error.h"
#include "common/threads.h"
#include "models/batch_norm_act.h"
#include "models/winograd.h"
#include "distributed/group.h"

namespace tssl::bindings {

AddonData& addonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

namespace {

bool contains(const std::string& s, const char* needle) { return s.find(needle) != std::string::npos; }

std::string classifyTorchMessage(const std::string& m) {
  if (contains(m, "shape") || contains(m, "size mismatch") || contains(m, "must match the size") || contains(m, "dimension") ||
      contains(m, "Expected 4-dimensional") || contains(m, "cannot be multiplied") || contains(m, "channels") || contains(m, "input size"))
    return "ERR_TORCH_SHAPE";
  if (contains(m, "scalar type") || contains(m, "dtype") || contains(m, "Expected object of scalar type")) return "ERR_TORCH_DTYPE";
  if (contains(m, "CUDA") || contains(m, "device")) return "ERR_TORCH_DEVICE";
  return "ERR_TORCH";
}

}  // namespace

CapturedError captureCurrentException() {
  try {
    throw;
  } catch (const tssl::Error& e) {
    return {e.code, e.what()};
  } catch (const c10::OutOfMemoryError& e) {
    return {"ERR_TORCH_OOM", e.what_without_backtrace()};
  } catch (const c10::IndexError& e) {
    return {"ERR_TORCH_INDEX", e.what_without_backtrace()};
  } catch (const c10::TypeError& e) {
    return {"ERR_TORCH_DTYPE", e.what_without_backtrace()};
  } catch (const c10::NotImplementedError& e) {
    return {"ERR_TORCH_NOT_IMPLEMENTED", e.what_without_backtrace()};
  } catch (const c10::ValueError& e) {
    std::string m = e.what_without_backtrace();
    return {classifyTorchMessage(m) == "ERR_TORCH" ? "ERR_TORCH_VALUE" : classifyTorchMessage(m), m};
  } catch (const c10::Error& e) {
    std::string m = e.what_without_backtrace();
    return {classifyTorchMessage(m), m};
  } catch (const std::bad_alloc&) {
    return {"ERR_TORCH_OOM", "out of memory"};
  } catch (const std::exception& e) {
    return {"ERR_TORCH", e.what()};
  } catch (...) {
    return {"ERR_TORCH", "unknown native error"};
  }
}

Napi::Error toJsError(Napi::Env env, const CapturedError& e) {
  Napi::Error err = Napi::Error::New(env, e.message);
  err.Set("code", Napi::String::New(env, e.code));
  return err;
}

void throwJs(Napi::Env env, const std::string& code, const std::string& message) { throw toJsError(env, {code, message}); }

namespace {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, Work work)
      : Napi::AsyncWorker(env, "torch-ssl"), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      applyThreads();
      build_ = work_();
    } catch (...) {
      failed_ = true;
      error_ = captureCurrentException();
    }
    work_ = nullptr;  // drop captured tensors on the worker, not later on the JS thread
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (failed_) {
      deferred_.Reject(toJsError(env, error_).Value());
      return;
    }
    try {
      deferred_.Resolve(build_ ? build_(env) : env.Undefined());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(toJsError(env, captureCurrentException()).Value());
    }
    build_ = nullptr;
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  ResultBuilder build_;
  bool failed_ = false;
  CapturedError error_;
};

Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throwJs(info.Env(), "ERR_INVALID_ARG", "setNumThreads expects a number");
  setDesiredThreads(info[0].As<Napi::Number>().Int32Value());
  applyThreads();
  return info.Env().Undefined();
}

Napi::Value getNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), desiredThreads()); }

Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
  const int64_t cudaDevices = cudaDeviceCount();
  o.Set("cudaAvailable", Napi::Boolean::New(env, cudaDevices > 0));
  o.Set("cudaDeviceCount", Napi::Number::New(env, static_cast<double>(cudaDevices)));
  o.Set("cudaBuild", Napi::Boolean::New(env, cudaBuild()));
  o.Set("parallelInfo", Napi::String::New(env, at::get_parallel_info()));
  o.Set("mkldnn", Napi::Boolean::New(env, at::hasMKLDNN()));
  Napi::Object conv = Napi::Object::New(env);
  conv.Set("winograd", Napi::Boolean::New(env, winogradEnabled()));
  conv.Set("kernels", Napi::String::New(env, winogradStatus()));
  o.Set("conv", conv);
  Napi::Object bn = Napi::Object::New(env);
  bn.Set("fused", Napi::Boolean::New(env, fusedBatchNormEnabled()));
  bn.Set("kernels", Napi::String::New(env, fusedBatchNormStatus()));
  o.Set("batchNorm", bn);
  const auto backends = dist::backends();
  Napi::Array b = Napi::Array::New(env, backends.size());
  for (uint32_t i = 0; i < backends.size(); ++i) b.Set(i, Napi::String::New(env, backends[i]));
  o.Set("distributedBackends", b);
  const BlasInfo blas = ensureBlasCore();
  Napi::Object bl = Napi::Object::New(env);
  bl.Set("library", blas.library);
  bl.Set("config", blas.config);
  bl.Set("core", blas.core);
  bl.Set("detected", blas.detected);
  bl.Set("chosenBy", blas.chosenBy);
  bl.Set("cpuIsa", blas.cpuIsa);
  o.Set("blas", bl);
  return o;
}

Napi::Value cpuCacheInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuCacheStats st = cpuCacheStats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("installed", Napi::Boolean::New(env, st.installed));
  o.Set("capBytes", Napi::Number::New(env, static_cast<double>(st.capBytes)));
  o.Set("cachedBytes", Napi::Number::New(env, static_cast<double>(st.cachedBytes)));
  o.Set("hits", Napi::Number::New(env, static_cast<double>(st.hits)));
  o.Set("misses", Napi::Number::New(env, static_cast<double>(st.misses)));
  return o;
}

Napi::Value releaseCpuCacheJs(const Napi::CallbackInfo& info) {
  releaseCpuCache();
  return info.Env().Undefined();
}

Napi::Value manualSeed(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsNumber()) throwJs(info.Env(), "ERR_INVALID_ARG", "manualSeed expects a number");
    at::manual_seed(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
    return info.Env().Undefined();
  });
}

}  // namespace

Napi::Object init(Napi::Env env, Napi::Object exports) {
  try {
    env.SetInstanceData(new AddonData());
    installCpuCacheFromEnv();  // before the first tensor is allocated
    ensureBlasCore();          // before the first GEMM (common/blas.h)
    exports.Set("setNumThreads", Napi::Function::New(env, setNumThreads));
    exports.Set("getNumThreads", Napi::Function::New(env, getNumThreads));
    exports.Set("buildInfo", Napi::Function::New(env, buildInfo));
    exports.Set("manualSeed", Napi::Function::New(env, manualSeed));
    exports.Set("cpuCacheInfo", Napi::Function::New(env, cpuCacheInfo));
    exports.Set("releaseCpuCache", Napi::Function::New(env, releaseCpuCacheJs));
    initTensor(env, exports);
    initModule(env, exports);
    initLosses(env, exports);
    initOptim(env, exports);
    initFeatures(env, exports);
    initTrain(env, exports);
  } catch (const Napi::Error& e) {
    // Thrown on into JS with the C API, so that require() fails with it. node-addon-api's own rethrow aborts the
    // process when JS can no longer run (process.exit() during the preload's worker-thread load); there
    // napi_throw just fails and nobody is left to tell.
    try {
      napi_throw(env, e.Value());
    } catch (const Napi::Error&) {
    }
  }
  return exports;
}

Napi::Promise runAsync(Napi::Env env, Work work) {
  auto* worker = new PromiseWorker(env, std::move(work));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

}  // namespace tssl::bindings

static Napi::Object InitTorchSsl(Napi::Env env, Napi::Object exports) { return tssl::bindings::init(env, exports); }

NODE_API_MODULE(torch_ssl, InitTorchSsl)
