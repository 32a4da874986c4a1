// Evaluation bindings:
//   knnGrid(trainF, trainL, testF, testL, { ks, temperatures, distance, chunkSize })
//     → Promise<{ ks, temperatures, top1: number[], top5: number[], numClasses, trainCount, testCount }>
//   linearProbe(trainF, trainL, testF, testL, options, stopFlag?) → Promise<{ top1, top5, history, weight, bias }>
#include <c10/core/InferenceMode.h>

#include <atomic>
#include <cmath>

#include <tuple>

#include "bindings/common.h"
#include "bindings/options.h"
#include "common/error.h"
#include "eval/knn.h"
#include "eval/linear_probe.h"

namespace tssl::bindings {

namespace {

Napi::Array toArray(Napi::Env env, const std::vector<double>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (uint32_t i = 0; i < v.size(); ++i) a.Set(i, Napi::Number::New(env, v[i]));
  return a;
}

/// (trainFeatures, trainLabels, testFeatures, testLabels, options, …): the four tensors, each checked.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> featureSets(Napi::Env env, const Napi::CallbackInfo& info) {
  if (info.Length() < 5 || !info[4].IsObject())
    throwJs(env, "ERR_INVALID_ARG", "expects (trainFeatures, trainLabels, testFeatures, testLabels, options)");
  return {unwrapTensor(env, info[0], "trainFeatures"), unwrapTensor(env, info[1], "trainLabels"), unwrapTensor(env, info[2], "testFeatures"),
          unwrapTensor(env, info[3], "testLabels")};
}

Napi::Value knnGrid(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    at::Tensor trainF, trainL, testF, testL;  // named tensors (lambdas below capture them; C++17 cannot capture bindings)
    std::tie(trainF, trainL, testF, testL) = featureSets(env, info);
    Napi::Object o = info[4].As<Napi::Object>();
    eval::KnnOptions opts;
    // Every option is required and type-checked: lib/eval.ts validates them and fills KNN_DEFAULTS.
    const char* w = "knnGrid options";
    opts.ks.clear();
    for (double k : requiredNumbers(env, o, "ks", w)) {
      if (k < 1 || k != std::floor(k)) throwJs(env, "ERR_INVALID_ARG", "knnGrid options.ks: expected positive integers");
      opts.ks.push_back(static_cast<int64_t>(k));
    }
    opts.temperatures = requiredNumbers(env, o, "temperatures", w);
    const std::string distance = requiredString(env, o, "distance", w);
    if (distance != "cosine" && distance != "euclidean") throwJs(env, "ERR_INVALID_ARG", "distance must be 'cosine' or 'euclidean'");
    opts.distance = distance == "cosine" ? eval::Distance::Cosine : eval::Distance::Euclidean;
    opts.chunkSize = requiredInt(env, o, "chunkSize", w);
    return runAsync(env, [trainF, trainL, testF, testL, opts]() -> ResultBuilder {
      c10::InferenceMode guard;
      eval::KnnResult r = eval::weightedKnn(trainF, trainL, testF, testL, opts);
      return [r](Napi::Env env) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        std::vector<double> ks(r.ks.begin(), r.ks.end());
        out.Set("ks", toArray(env, ks));
        out.Set("temperatures", toArray(env, r.temperatures));
        out.Set("top1", toArray(env, r.top1));
        out.Set("top5", toArray(env, r.top5));
        out.Set("numClasses", Napi::Number::New(env, static_cast<double>(r.numClasses)));
        out.Set("trainCount", Napi::Number::New(env, static_cast<double>(r.trainCount)));
        out.Set("testCount", Napi::Number::New(env, static_cast<double>(r.testCount)));
        return out;
      };
    });
  });
}

Napi::Value linearProbe(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    at::Tensor trainF, trainL, testF, testL;  // named tensors (lambdas below capture them; C++17 cannot capture bindings)
    std::tie(trainF, trainL, testF, testL) = featureSets(env, info);
    Napi::Object o = info[4].As<Napi::Object>();
    eval::LinearProbeOptions opts;
    // Every option is required: the defaults are LINEAR_PROBE_DEFAULTS (lib/eval.ts).
    const char* w = "linearProbe options";
    opts.epochs = requiredInt(env, o, "epochs", w);
    opts.lr = requiredNumber(env, o, "lr", w);
    opts.batchSize = requiredInt(env, o, "batchSize", w);
    opts.momentum = requiredNumber(env, o, "momentum", w);
    opts.weightDecay = requiredNumber(env, o, "weightDecay", w);
    opts.seed = static_cast<uint64_t>(requiredInt(env, o, "seed", w));
    opts.standardize = requiredBool(env, o, "standardize", w);
    opts.evalEveryEpoch = requiredBool(env, o, "evalEveryEpoch", w);
    // An optional stop flag from newStopFlag(): raised by an AbortSignal, polled between epochs.
    std::shared_ptr<std::atomic<bool>> stop;
    if (info.Length() > 5 && info[5].IsExternal()) stop = *info[5].As<Napi::External<std::shared_ptr<std::atomic<bool>>>>().Data();
    if (stop) opts.shouldStop = [stop] { return stop->load(); };
    return runAsync(env, [trainF, trainL, testF, testL, opts]() -> ResultBuilder {
      c10::InferenceMode guard;
      eval::LinearProbeResult r = eval::linearProbe(trainF, trainL, testF, testL, opts);
      return [r](Napi::Env env) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("top1", Napi::Number::New(env, r.top1));
        out.Set("top5", Napi::Number::New(env, r.top5));
        out.Set("numClasses", Napi::Number::New(env, static_cast<double>(r.numClasses)));
        Napi::Array history = Napi::Array::New(env, r.history.size());
        for (uint32_t i = 0; i < r.history.size(); ++i) {
          const auto& h = r.history[i];
          Napi::Object e = Napi::Object::New(env);
          e.Set("epoch", Napi::Number::New(env, static_cast<double>(h.epoch)));
          e.Set("lr", Napi::Number::New(env, h.lr));
          e.Set("loss", Napi::Number::New(env, h.loss));
          e.Set("trainTop1", Napi::Number::New(env, h.trainTop1));
          if (!std::isnan(h.testTop1)) e.Set("testTop1", Napi::Number::New(env, h.testTop1));
          history.Set(i, e);
        }
        out.Set("history", history);
        out.Set("weight", wrapTensor(env, r.weight));
        out.Set("bias", wrapTensor(env, r.bias));
        return out;
      };
    });
  });
}

Napi::Value newStopFlag(const Napi::CallbackInfo& info) {
  auto* flag = new std::shared_ptr<std::atomic<bool>>(std::make_shared<std::atomic<bool>>(false));
  return Napi::External<std::shared_ptr<std::atomic<bool>>>::New(info.Env(), flag,
                                                                 [](Napi::Env, std::shared_ptr<std::atomic<bool>>* p) { delete p; });
}

Napi::Value raiseStopFlag(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) throwJs(info.Env(), "ERR_INVALID_ARG", "raiseStopFlag expects a stop flag");
  (*info[0].As<Napi::External<std::shared_ptr<std::atomic<bool>>>>().Data())->store(true);
  return info.Env().Undefined();
}

}  // namespace

void initEval(Napi::Env env, Napi::Object exports) {
  exports.Set("knnGrid", Napi::Function::New(env, knnGrid));
  exports.Set("linearProbe", Napi::Function::New(env, linearProbe));
  exports.Set("newStopFlag", Napi::Function::New(env, newStopFlag));
  exports.Set("raiseStopFlag", Napi::Function::New(env, raiseStopFlag));
}

}  // namespace tssl::bindings
