// startTraining(config, data, resume, onEvent) returns { done: Promise<result>, abort }: the training loop runs
// on its own std::thread (not the libuv pool); events reach JS through a thread-safe function.
#include <atomic>
#include <thread>

#include "bindings/common.h"
#include "common/cpu_allocator.h"
#include "common/error.h"
#include "common/threads.h"
#include "train/trainer.h"

namespace tssl::bindings {
namespace {

double num(const Napi::Object& o, const char* k, double d) {
  Napi::Value v = o.Get(k);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : d;
}
bool flag(const Napi::Object& o, const char* k, bool d) {
  Napi::Value v = o.Get(k);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : d;
}
std::string str(const Napi::Object& o, const char* k, const std::string& d) {
  Napi::Value v = o.Get(k);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : d;
}
std::vector<double> nums(const Napi::Object& o, const char* k, std::vector<double> d) {
  Napi::Value v = o.Get(k);
  if (!v.IsArray()) return d;
  Napi::Array a = v.As<Napi::Array>();
  std::vector<double> r(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) r[i] = a.Get(i).As<Napi::Number>().DoubleValue();
  return r;
}

}  // namespace

data::ViewAugment parseViewAugment(const Napi::Object& o) {
  data::ViewAugment a;
  a.size = static_cast<int64_t>(num(o, "size", double(a.size)));
  a.scaleMin = num(o, "scaleMin", a.scaleMin);
  a.scaleMax = num(o, "scaleMax", a.scaleMax);
  a.ratioMin = num(o, "ratioMin", a.ratioMin);
  a.ratioMax = num(o, "ratioMax", a.ratioMax);
  a.bicubic = str(o, "interpolation", "bicubic") == "bicubic";
  a.jitterP = num(o, "jitterP", a.jitterP);
  a.brightness = num(o, "brightness", a.brightness);
  a.contrast = num(o, "contrast", a.contrast);
  a.saturation = num(o, "saturation", a.saturation);
  a.hue = num(o, "hue", a.hue);
  a.grayP = num(o, "grayP", a.grayP);
  a.blurP = num(o, "blurP", a.blurP);
  a.sigmaMin = num(o, "sigmaMin", a.sigmaMin);
  a.sigmaMax = num(o, "sigmaMax", a.sigmaMax);
  a.blurKernel = static_cast<int64_t>(num(o, "blurKernel", 0));
  a.solarizeP = num(o, "solarizeP", a.solarizeP);
  a.flipP = num(o, "flipP", a.flipP);
  a.mean = nums(o, "mean", a.mean);
  a.std = nums(o, "std", a.std);
  return a;
}

void initAugment(Napi::Env env, Napi::Object exports);

namespace {

train::TrainConfig parseConfig(const Napi::Object& o) {
  train::TrainConfig c;
  c.method = str(o, "method", c.method);
  c.backbone.depth = static_cast<int>(num(o, "depth", 18));
  c.backbone.stem = str(o, "stem", "cifar") == "cifar" ? Stem::Cifar : Stem::ImageNet;
  c.backbone.zeroInitResidual = flag(o, "zeroInitResidual", false);
  c.projector.hiddenDims.clear();
  for (double h : nums(o, "projectorHidden", {2048, 2048})) c.projector.hiddenDims.push_back(int64_t(h));
  c.projector.outputDim = static_cast<int64_t>(num(o, "projectorOutput", 2048));
  c.projector.batchNorm = flag(o, "projectorBatchNorm", true);
  Napi::Array views = o.Get("views").As<Napi::Array>();
  for (uint32_t i = 0; i < views.Length(); ++i) c.views.push_back(parseViewAugment(views.Get(i).As<Napi::Object>()));
  c.numViews = static_cast<int64_t>(num(o, "numViews", 2));
  c.concatViews = flag(o, "concatViews", false);
  c.batchSize = static_cast<int64_t>(num(o, "batchSize", 256));
  c.epochs = static_cast<int64_t>(num(o, "epochs", 1));
  c.maxSteps = static_cast<int64_t>(num(o, "maxSteps", 0));
  c.lr = num(o, "lr", c.lr);
  c.classifierLr = num(o, "classifierLr", c.classifierLr);
  c.weightDecay = num(o, "weightDecay", c.weightDecay);
  c.eta = num(o, "eta", c.eta);
  c.momentum = num(o, "momentum", c.momentum);
  c.clipLr = flag(o, "clipLr", c.clipLr);
  c.excludeBiasAndNorm = flag(o, "excludeBiasAndNorm", c.excludeBiasAndNorm);
  c.warmupEpochs = num(o, "warmupEpochs", c.warmupEpochs);
  c.warmupStartLr = num(o, "warmupStartLr", c.warmupStartLr);
  c.minLr = num(o, "minLr", c.minLr);
  if (o.Get("loss").IsObject()) {
    Napi::Object l = o.Get("loss").As<Napi::Object>();
    Napi::Array keys = l.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
      if (l.Get(k).IsNumber()) c.lossOptions[k] = l.Get(k).As<Napi::Number>().DoubleValue();
    }
  }
  c.numClasses = static_cast<int64_t>(num(o, "numClasses", 0));
  c.seed = static_cast<uint64_t>(num(o, "seed", 5));
  c.device = str(o, "device", "cpu");
  c.channelsLast = flag(o, "channelsLast", false);
  c.shuffle = flag(o, "shuffle", true);
  c.precision = str(o, "precision", "32");
  c.gradScaler = static_cast<int>(num(o, "gradScaler", -1));
  c.scaler.initScale = num(o, "scalerInitScale", c.scaler.initScale);
  c.scaler.growthFactor = num(o, "scalerGrowthFactor", c.scaler.growthFactor);
  c.scaler.backoffFactor = num(o, "scalerBackoffFactor", c.scaler.backoffFactor);
  c.scaler.growthInterval = static_cast<int64_t>(num(o, "scalerGrowthInterval", double(c.scaler.growthInterval)));
  c.checkpointEvery = static_cast<int64_t>(num(o, "checkpointEvery", 1));
  c.logEvery = static_cast<int64_t>(num(o, "logEvery", 10));
  c.knnEvery = static_cast<int64_t>(num(o, "knnEvery", 0));
  c.knnK = static_cast<int64_t>(num(o, "knnK", 20));
  c.knnTemperature = num(o, "knnTemperature", 0.07);
  c.evalMean = nums(o, "evalMean", c.evalMean);
  c.evalStd = nums(o, "evalStd", c.evalStd);
  c.producerThreads = static_cast<int64_t>(num(o, "producerThreads", 1));
  c.prefetch = static_cast<int64_t>(num(o, "prefetch", 2));
  return c;
}

struct Message {
  enum Kind { Event, Done, Failed } kind = Event;
  train::TrainEvent event;
  train::TrainResult result;
  CapturedError error;
};

struct Run {
  std::atomic<bool> stop{false};
  Napi::ThreadSafeFunction tsfn;
  std::unique_ptr<Napi::Promise::Deferred> deferred;
};

Napi::Object namedTensors(Napi::Env env, const std::vector<std::pair<std::string, at::Tensor>>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (uint32_t i = 0; i < v.size(); ++i) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::String::New(env, v[i].first));
    pair.Set(1u, wrapTensor(env, v[i].second));
    a.Set(i, pair);
  }
  return a;
}

Napi::Object eventToJs(Napi::Env env, const train::TrainEvent& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", e.type);
  o.Set("epoch", double(e.epoch));
  o.Set("globalStep", double(e.globalStep));
  o.Set("totalSteps", double(e.totalSteps));
  o.Set("stepsPerEpoch", double(e.stepsPerEpoch));
  if (e.gradScale > 0) {
    o.Set("gradScale", e.gradScale);
    o.Set("skippedSteps", double(e.skippedSteps));
  }
  if (e.type == "step") {
    o.Set("step", double(e.step));
    o.Set("loss", e.loss);
    o.Set("classifierLoss", e.classifierLoss);
    o.Set("lr", e.lr);
    o.Set("imagesPerSec", e.imagesPerSec);
    o.Set("augmentMs", e.augmentMs);
    o.Set("stepMs", e.stepMs);
    o.Set("waitMs", e.waitMs);
    Napi::Object t = Napi::Object::New(env);
    for (const auto& [k, v] : e.terms) t.Set(k, v);
    o.Set("terms", t);
  } else if (e.type == "epoch") {
    o.Set("loss", e.loss);
  } else if (e.type == "knn") {
    o.Set("top1", e.top1);
    o.Set("top5", e.top5);
  } else if (e.type == "checkpoint") {
    o.Set("final", e.final);
    o.Set("aborted", e.aborted);
    o.Set("stateDict", namedTensors(env, e.stateDict));
    o.Set("momentum", namedTensors(env, e.momentum));
    Napi::Object lrs = Napi::Object::New(env);
    for (const auto& [k, v] : e.groupLrs) lrs.Set(k, v);
    o.Set("groupLrs", lrs);
    if (e.gradScale > 0) o.Set("ampGrowthTracker", double(e.ampGrowthTracker));
  }
  return o;
}

Napi::Value startTraining(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[0].IsObject() || !info[1].IsObject() || !info[3].IsFunction())
      throwJs(env, "ERR_INVALID_ARG", "startTraining(config, data, resume, onEvent)");
    train::TrainConfig config = parseConfig(info[0].As<Napi::Object>());
    Napi::Object dataObj = info[1].As<Napi::Object>();
    train::TrainData data;
    data.images = unwrapTensor(env, dataObj.Get("images"), "images");
    auto optTensor = [&](const char* k) {
      Napi::Value v = dataObj.Get(k);
      return v.IsObject() ? unwrapTensor(env, v, k) : at::Tensor();
    };
    data.labels = optTensor("labels");
    data.valImages = optTensor("valImages");
    data.valLabels = optTensor("valLabels");
    std::shared_ptr<train::ResumeState> resume;
    if (info[2].IsObject()) {
      Napi::Object r = info[2].As<Napi::Object>();
      resume = std::make_shared<train::ResumeState>();
      resume->epoch = static_cast<int64_t>(num(r, "epoch", 0));
      resume->globalStep = static_cast<int64_t>(num(r, "globalStep", 0));
      resume->ampScale = num(r, "ampScale", 0);
      resume->ampGrowthTracker = static_cast<int64_t>(num(r, "ampGrowthTracker", 0));
      Napi::Array sd = r.Get("stateDict").As<Napi::Array>();
      for (uint32_t i = 0; i < sd.Length(); ++i) {
        Napi::Array pair = sd.Get(i).As<Napi::Array>();
        std::string k = pair.Get(0u).As<Napi::String>().Utf8Value();
        resume->stateDict.emplace_back(k, unwrapTensor(env, pair.Get(1u), k.c_str()));
      }
      if (r.Get("momentum").IsArray()) {
        Napi::Array m = r.Get("momentum").As<Napi::Array>();
        for (uint32_t i = 0; i < m.Length(); ++i) {
          Napi::Array pair = m.Get(i).As<Napi::Array>();
          std::string k = pair.Get(0u).As<Napi::String>().Utf8Value();
          resume->momentum[k] = unwrapTensor(env, pair.Get(1u), k.c_str());
        }
      }
    }
    auto run = std::make_shared<Run>();
    run->deferred = std::make_unique<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
    Napi::Function onEvent = info[3].As<Napi::Function>();
    run->tsfn = Napi::ThreadSafeFunction::New(env, onEvent, "torch-ssl-train", 0, 1);

    auto deliver = [run](Napi::Env env, Napi::Function jsCallback, Message* msg) {
      std::unique_ptr<Message> m(msg);
      if (env == nullptr) return;  // environment shutting down
      Napi::HandleScope scope(env);
      try {
        if (m->kind == Message::Event) {
          jsCallback.Call({eventToJs(env, m->event)});
        } else if (m->kind == Message::Done) {
          Napi::Object r = Napi::Object::New(env);
          r.Set("epochs", double(m->result.epochs));
          r.Set("globalStep", double(m->result.globalStep));
          r.Set("aborted", m->result.aborted);
          r.Set("lastLoss", m->result.lastLoss);
          r.Set("imagesPerSec", m->result.imagesPerSec);
          r.Set("augmentMsPerStep", m->result.augmentMsPerStep);
          r.Set("stepMsPerStep", m->result.stepMsPerStep);
          r.Set("waitMsPerStep", m->result.waitMsPerStep);
          r.Set("skippedSteps", double(m->result.skippedSteps));
          run->deferred->Resolve(r);
        } else {
          run->deferred->Reject(toJsError(env, m->error).Value());
        }
      } catch (const Napi::Error& e) {
        // A throwing onEvent stops the run and rejects with that error.
        run->stop = true;
        if (m->kind != Message::Event) run->deferred->Reject(e.Value());
      }
    };

    std::thread([run, config, data, resume, deliver]() mutable {
      auto send = [&](Message* m) { run->tsfn.BlockingCall(m, deliver); };
      auto* done = new Message();
      try {
        // Below the JS thread: on a machine whose cores training saturates, the event loop (progress,
        // checkpoint writing, the user's own work) still gets the CPU when it needs it.
        lowerThisThreadPriority(5);
        applyThreads();
        done->result = train::runTraining(
            config, data, resume.get(),
            [&](train::TrainEvent&& e) {
              auto* m = new Message();
              m->event = std::move(e);
              send(m);
            },
            [&] { return run->stop.load(); });
        done->kind = Message::Done;
      } catch (...) {
        done->kind = Message::Failed;
        done->error = captureCurrentException();
      }
      // Before resolving: the run's model, activations and data sit in the CPU cache now; give them back
      // to the system, so that code after `await train()` (or the next run) starts from a clean slate.
      data = train::TrainData();
      resume.reset();
      releaseCpuCache();
      send(done);
      run->tsfn.Release();
    }).detach();

    Napi::Object handle = Napi::Object::New(env);
    handle.Set("done", run->deferred->Promise());
    handle.Set("abort", Napi::Function::New(env, [run](const Napi::CallbackInfo& i) {
                 run->stop = true;
                 return i.Env().Undefined();
               }));
    return handle;
  });
}

}  // namespace

void initTrain(Napi::Env env, Napi::Object exports) {
  exports.Set("startTraining", Napi::Function::New(env, startTraining));
  initAugment(env, exports);
}

}  // namespace tssl::bindings
