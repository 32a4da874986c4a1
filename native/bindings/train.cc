// startTraining(config, data, resume, onEvent) returns { done: Promise<result>, abort }: the training loop runs
// on its own std::thread (not the libuv pool); events reach JS through a thread-safe function.
#include <atomic>
#include <thread>

#include "bindings/common.h"
#include "bindings/options.h"
#include "common/cpu_allocator.h"
#include "common/error.h"
#include "common/threads.h"
#include "train/trainer.h"

namespace tssl::bindings {
data::ViewAugment parseViewAugment(Napi::Env env, const Napi::Object& o) {
  const char* w = "view";
  data::ViewAugment a;
  a.size = requiredInt(env, o, "size", w);
  a.scaleMin = requiredNumber(env, o, "scaleMin", w);
  a.scaleMax = requiredNumber(env, o, "scaleMax", w);
  a.ratioMin = requiredNumber(env, o, "ratioMin", w);
  a.ratioMax = requiredNumber(env, o, "ratioMax", w);
  const std::string interpolation = requiredString(env, o, "interpolation", w);
  if (interpolation != "bicubic" && interpolation != "bilinear") throwJs(env, "ERR_INVALID_ARG", "view.interpolation: expected bicubic or bilinear");
  a.bicubic = interpolation == "bicubic";
  a.jitterP = requiredNumber(env, o, "jitterP", w);
  a.brightness = requiredNumber(env, o, "brightness", w);
  a.contrast = requiredNumber(env, o, "contrast", w);
  a.saturation = requiredNumber(env, o, "saturation", w);
  a.hue = requiredNumber(env, o, "hue", w);
  a.grayP = requiredNumber(env, o, "grayP", w);
  a.blurP = requiredNumber(env, o, "blurP", w);
  a.sigmaMin = requiredNumber(env, o, "sigmaMin", w);
  a.sigmaMax = requiredNumber(env, o, "sigmaMax", w);
  a.blurKernel = requiredInt(env, o, "blurKernel", w);
  a.solarizeP = requiredNumber(env, o, "solarizeP", w);
  a.flipP = requiredNumber(env, o, "flipP", w);
  a.mean = requiredNumbers(env, o, "mean", w);
  a.std = requiredNumbers(env, o, "std", w);
  if (a.mean.size() != 3 || a.std.size() != 3) throwJs(env, "ERR_INVALID_ARG", "view.mean and view.std: expected 3 numbers each (R, G, B)");
  return a;
}

void initAugment(Napi::Env env, Napi::Object exports);

namespace {

// The complete config from lib/train-wire.ts (toNativeConfig): every field is required; defaults live on the TS
// side (lib/defaults.ts, the zod schema in lib/train-config.ts) only.
train::TrainConfig parseConfig(Napi::Env env, const Napi::Object& o) {
  const char* w = "config";
  auto num = [&](const char* k) { return requiredNumber(env, o, k, w); };
  auto integer = [&](const char* k) { return requiredInt(env, o, k, w); };
  auto flag = [&](const char* k) { return requiredBool(env, o, k, w); };
  auto str = [&](const char* k) { return requiredString(env, o, k, w); };
  train::TrainConfig c;
  c.method = str("method");
  c.backbone.depth = static_cast<int>(integer("depth"));
  const std::string stem = str("stem");
  if (stem != "cifar" && stem != "imagenet") throwJs(env, "ERR_INVALID_ARG", "config.stem: expected cifar or imagenet");
  c.backbone.stem = stem == "cifar" ? Stem::Cifar : Stem::ImageNet;
  c.backbone.zeroInitResidual = flag("zeroInitResidual");
  c.backbone.torchvisionInit = true;  // a resumed run's weights are read after this, like any step's
  auto head = [&](const char* key) {
    Napi::Value v = o.Get(key);
    if (!v.IsObject()) throwJs(env, "ERR_INVALID_ARG", std::string("config.") + key + ": expected a head description");
    return parseHead(env, v.As<Napi::Object>(), std::string("config.") + key);
  };
  c.projector = head("projector");
  if (!o.Get("predictor").IsNull()) c.predictor = head("predictor");
  Napi::Value views = o.Get("views");
  if (!views.IsArray()) throwJs(env, "ERR_INVALID_ARG", "config.views: expected an array of view pipelines");
  for (uint32_t i = 0; i < views.As<Napi::Array>().Length(); ++i)
    c.views.push_back(parseViewAugment(env, views.As<Napi::Array>().Get(i).As<Napi::Object>()));
  c.numViews = integer("numViews");
  c.concatViews = flag("concatViews");
  c.batchSize = integer("batchSize");
  c.epochs = integer("epochs");
  c.maxSteps = integer("maxSteps");
  c.profileSteps = integer("profileSteps");
  c.lr = num("lr");
  c.classifierLr = num("classifierLr");
  c.weightDecay = num("weightDecay");
  c.eta = num("eta");
  c.momentum = num("momentum");
  c.dampening = num("dampening");
  c.nesterov = flag("nesterov");
  c.eps = num("eps");
  c.clipLr = flag("clipLr");
  c.excludeBiasAndNorm = flag("excludeBiasAndNorm");
  const std::string optimizer = str("optimizer");
  if (optimizer != "lars" && optimizer != "sgd") throwJs(env, "ERR_INVALID_ARG", "config.optimizer: expected lars or sgd");
  c.lars = optimizer == "lars";
  c.warmupEpochs = num("warmupEpochs");
  c.warmupStartLr = num("warmupStartLr");
  c.minLr = num("minLr");
  Napi::Value loss = o.Get("loss");
  if (!loss.IsObject()) throwJs(env, "ERR_INVALID_ARG", "config.loss: expected the method's options");
  c.lossOptions = numberFields(env, loss.As<Napi::Object>(), "config.loss");
  c.numClasses = integer("numClasses");
  c.seed = static_cast<uint64_t>(integer("seed"));
  c.device = str("device");
  c.channelsLast = flag("channelsLast");
  c.shuffle = flag("shuffle");
  c.precision = train::parsePrecision(str("precision"));
  Napi::Value gs = o.Get("gradScaler");  // null: on for 16-mixed only
  if (gs.IsBoolean()) c.gradScaler = gs.As<Napi::Boolean>().Value();
  else if (!gs.IsNull()) throwJs(env, "ERR_INVALID_ARG", "config.gradScaler: expected true, false or null");
  c.scaler.initScale = num("scalerInitScale");
  c.scaler.growthFactor = num("scalerGrowthFactor");
  c.scaler.backoffFactor = num("scalerBackoffFactor");
  c.scaler.growthInterval = integer("scalerGrowthInterval");
  c.checkpointEvery = integer("checkpointEvery");
  c.logEvery = integer("logEvery");
  c.knnEvery = integer("knnEvery");
  c.knnK = integer("knnK");
  c.knnTemperature = num("knnTemperature");
  c.evalMean = requiredNumbers(env, o, "evalMean", w);
  c.evalStd = requiredNumbers(env, o, "evalStd", w);
  if (c.evalMean.size() != 3 || c.evalStd.size() != 3)
    throwJs(env, "ERR_INVALID_ARG", "config.evalMean and config.evalStd: expected 3 numbers each (R, G, B)");
  Napi::Value dv = o.Get("dist");  // null: a single-process run
  if (dv.IsObject()) {
    const Napi::Object d = dv.As<Napi::Object>();
    const char* dw = "config.dist";
    dist::DistOptions x;
    x.rank = requiredInt(env, d, "rank", dw);
    x.worldSize = requiredInt(env, d, "worldSize", dw);
    x.localRank = requiredInt(env, d, "localRank", dw);
    x.masterAddr = requiredString(env, d, "masterAddr", dw);
    x.masterPort = requiredInt(env, d, "masterPort", dw);
    x.backend = requiredString(env, d, "backend", dw);
    x.timeoutSec = requiredNumber(env, d, "timeoutSec", dw);
    x.rendezvousTimeoutSec = requiredNumber(env, d, "rendezvousTimeoutSec", dw);
    x.configDigest = requiredString(env, d, "configDigest", dw);
    x.syncBatchNorm = requiredBool(env, d, "syncBatchNorm", dw);
    x.bucketMb = requiredInt(env, d, "bucketMb", dw);
    c.dist = x;
  } else if (!dv.IsNull()) {
    throwJs(env, "ERR_INVALID_ARG", "config.dist: expected an object or null");
  }
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
    o.Set("commMs", e.commMs);
    o.Set("commWaitMs", e.commWaitMs);
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
    Napi::Array names = Napi::Array::New(env, e.parameterNames.size());
    for (uint32_t i = 0; i < e.parameterNames.size(); ++i) names.Set(i, e.parameterNames[i]);
    o.Set("parameterNames", names);
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
    train::TrainConfig config = parseConfig(env, info[0].As<Napi::Object>());
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
      resume->globalStep = requiredInt(env, r, "globalStep", "resume");
      resume->backboneOnly = requiredBool(env, r, "backboneOnly", "resume");
      resume->ampScale = optionalNumber(r, "ampScale", 0);  // absent: no scaler state saved
      resume->ampGrowthTracker = optionalInt(r, "ampGrowthTracker", 0);
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
          r.Set("commMsPerStep", m->result.commMsPerStep);
          r.Set("commWaitMsPerStep", m->result.commWaitMsPerStep);
          r.Set("rank", double(m->result.rank));
          r.Set("worldSize", double(m->result.worldSize));
          r.Set("skippedSteps", double(m->result.skippedSteps));
          if (m->result.profiledSteps > 0) {
            Napi::Object prof = Napi::Object::New(env);
            prof.Set("steps", double(m->result.profiledSteps));
            prof.Set("wallMs", m->result.profiledWallMs);
            Napi::Array ops = Napi::Array::New(env, m->result.profile.size());
            for (size_t i = 0; i < m->result.profile.size(); ++i) {
              const auto& o = m->result.profile[i];
              Napi::Object op = Napi::Object::New(env);
              op.Set("phase", o.phase);
              op.Set("name", o.name);
              op.Set("shapes", o.shapes);
              op.Set("calls", double(o.calls));
              op.Set("selfMs", o.selfMs);
              op.Set("totalMs", o.totalMs);
              op.Set("flops", o.flops);
              op.Set("elements", o.elements);
              ops.Set(uint32_t(i), op);
            }
            prof.Set("ops", ops);
            r.Set("profile", prof);
          }
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
