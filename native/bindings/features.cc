// Feature extraction bindings:
//   prepareImages(pixels, stats | null, device) → Promise<NativeTensor>   (normalise; no model lock)
//   extractFeatureBatch(backbone, projector | null, images, options) → Promise<NativeTensor>
// The TS facade overlaps prepareImages of batch i+1 with extractFeatureBatch of batch i.
#include <c10/core/InferenceMode.h>

#include <mutex>
#include <optional>

#include "bindings/common.h"
#include "bindings/options.h"
#include "bindings/module_access.h"
#include "common/error.h"
#include "features/extract.h"
#include "features/folded_resnet.h"
#include "features/normalize.h"

namespace tssl::bindings {

void initEval(Napi::Env env, Napi::Object exports);

namespace {

std::array<double, 3> triple(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 3) throwJs(env, "ERR_INVALID_ARG", std::string(what) + " must be 3 numbers");
  std::array<double, 3> out{};
  for (uint32_t i = 0; i < 3; ++i) out[i] = v.As<Napi::Array>().Get(i).As<Napi::Number>().DoubleValue();
  return out;
}

Napi::Value prepareImages(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    at::Tensor pixels = unwrapTensor(env, info[0], "images");
    std::optional<features::ChannelStats> stats;
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Object o = info[1].As<Napi::Object>();
      stats = features::ChannelStats{triple(env, o.Get("mean"), "mean"), triple(env, o.Get("std"), "std")};
    }
    at::Device device = parseDevice(env, info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "cpu");
    return runAsync(env, [pixels, stats, device]() -> ResultBuilder {
      c10::InferenceMode guard;
      at::Tensor x = features::toModelInput(pixels, stats, device);
      return [x](Napi::Env env) -> Napi::Value { return wrapTensor(env, x); };
    });
  });
}

/// Holds a module in eval mode for the duration of a pass, restoring its mode afterwards.
class EvalScope {
 public:
  explicit EvalScope(torch::nn::Module& m) : module_(m), wasTraining_(m.is_training()) { module_.eval(); }
  ~EvalScope() { module_.train(wasTraining_); }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;

 private:
  torch::nn::Module& module_;
  bool wasTraining_;
};

Napi::Value extractFeatureBatch(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    ModuleAccess backbone = unwrapModule(env, info[0], "backbone");
    if (!backbone.featureMap) throwJs(env, "ERR_INVALID_ARG", "backbone must be a ResNet");
    std::optional<ModuleAccess> projector;
    if (info[1].IsObject()) projector = unwrapModule(env, info[1], "projector");
    at::Tensor images = unwrapTensor(env, info[2], "images");
    Napi::Object o = info[3].As<Napi::Object>();
    features::ExtractOptions opts;
    Napi::Object pooling = o.Get("pooling").As<Napi::Object>();
    std::string kind = pooling.Get("kind").As<Napi::String>().Utf8Value();
    opts.pooling.kind = kind == "global" ? features::PoolingKind::Global
                        : kind == "none" ? features::PoolingKind::None
                                         : features::PoolingKind::Window;
    opts.pooling.kernel = optionalInt(pooling, "kernel", 3);
    opts.pooling.stride = optionalInt(pooling, "stride", 2);
    if (o.Get("patches").IsObject()) {
      Napi::Object p = o.Get("patches").As<Napi::Object>();
      features::PatchOptions po;
      po.size = optionalInt(p, "size", 0);
      po.stride = optionalInt(p, "stride", 0);
      po.count = optionalInt(p, "count", 0);
      po.seed = static_cast<uint64_t>(optionalInt(p, "seed", 0));
      po.outHeight = optionalInt(p, "outHeight", 0);
      po.outWidth = optionalInt(p, "outWidth", 0);
      opts.patches = po;
    }
    opts.channelsLast = o.Get("channelsLast").IsBoolean() ? o.Get("channelsLast").As<Napi::Boolean>().Value() : true;
    const bool foldBatchNorm = o.Get("foldBatchNorm").IsBoolean() ? o.Get("foldBatchNorm").As<Napi::Boolean>().Value() : true;
    const int64_t firstIndex = optionalInt(o, "firstIndex", 0);
    return runAsync(env, [backbone, projector, images, opts, firstIndex, foldBatchNorm]() -> ResultBuilder {
      std::unique_lock<std::mutex> lockBackbone(*backbone.mutex, std::defer_lock);
      std::unique_lock<std::mutex> lockProjector;
      if (projector && projector->mutex != backbone.mutex) {
        lockProjector = std::unique_lock<std::mutex>(*projector->mutex, std::defer_lock);
        std::lock(lockBackbone, lockProjector);
      } else {
        lockBackbone.lock();
      }
      EvalScope backboneEval(*backbone.module);
      std::optional<EvalScope> projectorEval;
      if (projector) projectorEval.emplace(*projector->module);
      c10::InferenceMode guard;
      features::ModelFn project = projector ? projector->forward : features::ModelFn();
      features::ModelFn featureMap = backbone.featureMap;
      features::ExtractOptions o = opts;
      auto net = std::dynamic_pointer_cast<ResNetImpl>(backbone.module);
      if (foldBatchNorm && net && images.device().is_cpu() && features::FoldedResNet::supported(*net)) {
        // Snapshot per call (folding ResNet-18 costs milliseconds): later weight changes are always seen.
        auto folded = std::make_shared<features::FoldedResNet>(*net);
        featureMap = [folded](const at::Tensor& x) { return folded->featureMap(x); };
        o.channelsLast = false;  // oneDNN's own blocked layout is used instead
      }
      at::Tensor f = features::extractBatch(featureMap, project, images, o, firstIndex);
      if (!f.device().is_cpu()) f = f.cpu();
      return [f](Napi::Env env) -> Napi::Value { return wrapTensor(env, f); };
    });
  });
}

}  // namespace

void initFeatures(Napi::Env env, Napi::Object exports) {
  exports.Set("prepareImages", Napi::Function::New(env, prepareImages));
  exports.Set("extractFeatureBatch", Napi::Function::New(env, extractFeatureBatch));
  initEval(env, exports);
}

}  // namespace tssl::bindings
