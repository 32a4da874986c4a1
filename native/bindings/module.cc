// NativeModule: a JS handle on a torch::nn::Module (ResNet or projector). Forward passes and weight loading
// run on libuv workers and are serialised per module by a mutex (BatchNorm running stats are shared state).
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/autograd.h>

#include <map>
#include <mutex>

#include "bindings/common.h"
#include "models/state_dict.h"
#include "bindings/options.h"
#include "bindings/module_access.h"
#include "common/error.h"
#include "models/projector.h"
#include "models/resnet.h"

namespace tssl::bindings {
namespace {

struct ModuleState {
  std::shared_ptr<torch::nn::Module> module;
  std::function<at::Tensor(const at::Tensor&)> forward;
  std::function<at::Tensor(const at::Tensor&)> featureMap;  // ResNet only
  std::string kind;
  std::mutex mu;
};

class ModuleWrap : public Napi::ObjectWrap<ModuleWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeModule",
                       {
                           InstanceMethod<&ModuleWrap::forward>("forward"),
                           InstanceMethod<&ModuleWrap::featureMap>("featureMap"),
                           InstanceMethod<&ModuleWrap::setTraining>("setTraining"),
                           InstanceAccessor<&ModuleWrap::training>("training"),
                           InstanceAccessor<&ModuleWrap::kind>("kind"),
                           InstanceMethod<&ModuleWrap::namedParameters>("namedParameters"),
                           InstanceMethod<&ModuleWrap::namedBuffers>("namedBuffers"),
                           InstanceMethod<&ModuleWrap::loadStateDict>("loadStateDict"),
                           InstanceMethod<&ModuleWrap::to>("to"),
                           InstanceMethod<&ModuleWrap::setChannelsLast>("setChannelsLast"),
                           InstanceMethod<&ModuleWrap::dispose>("dispose"),
                       });
  }

  explicit ModuleWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModuleWrap>(info) {
    if (info.Length() == 1 && info[0].IsExternal()) state_ = *info[0].As<Napi::External<std::shared_ptr<ModuleState>>>().Data();
    else throwJs(info.Env(), "ERR_INVALID_ARG", "NativeModule cannot be constructed directly; use resnet() or projector()");
  }

  std::shared_ptr<ModuleState> state(Napi::Env env) const {
    if (!state_) throwJs(env, "ERR_DISPOSED", "the model was used after dispose()");
    return state_;
  }

 private:
  Napi::Value runForward(const Napi::CallbackInfo& info, bool map) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto st = state(info.Env());
      if (map && !st->featureMap) throwJs(info.Env(), "ERR_INVALID_ARG", "featureMap() exists only on ResNets");
      at::Tensor x = unwrapTensor(info.Env(), info[0], "input");
      bool grad = true;
      if (info.Length() > 1 && info[1].IsObject()) {
        Napi::Value g = info[1].As<Napi::Object>().Get("grad");
        if (g.IsBoolean()) grad = g.As<Napi::Boolean>().Value();
      }
      return runAsync(info.Env(), [st, x, map, grad]() -> ResultBuilder {
        // User-facing calls reject NaN / Inf inputs up front (the trainer's own path skips this pass).
        if (x.is_floating_point()) TSSL_CHECK(x.isfinite().all().item<bool>(), "ERR_TORCH_VALUE", "model input contains NaN or Inf values");
        std::lock_guard<std::mutex> lock(st->mu);
        at::Tensor y;
        if (grad) {
          y = map ? st->featureMap(x) : st->forward(x);
        } else {
          c10::InferenceMode guard;
          y = map ? st->featureMap(x) : st->forward(x);
        }
        return [y](Napi::Env env) -> Napi::Value { return wrapTensor(env, y); };
      });
    });
  }
  Napi::Value forward(const Napi::CallbackInfo& info) { return runForward(info, false); }
  Napi::Value featureMap(const Napi::CallbackInfo& info) { return runForward(info, true); }

  Napi::Value setTraining(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto st = state(info.Env());
      std::lock_guard<std::mutex> lock(st->mu);
      st->module->train(info.Length() == 0 || info[0].ToBoolean().Value());
      return info.Env().Undefined();
    });
  }
  Napi::Value training(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), state(info.Env())->module->is_training()); }
  Napi::Value kind(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), state(info.Env())->kind); }

  // Both return [[name, NativeTensor], ...] in registration order, sharing storage with the module.
  Napi::Value namedParameters(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto st = state(info.Env());
      auto params = st->module->named_parameters(true);
      Napi::Array out = Napi::Array::New(info.Env(), params.size());
      uint32_t i = 0;
      for (const auto& kv : params) {
        Napi::Array pair = Napi::Array::New(info.Env(), 2);
        pair.Set(0u, Napi::String::New(info.Env(), kv.key()));
        pair.Set(1u, wrapTensor(info.Env(), kv.value()));
        out.Set(i++, pair);
      }
      return out;
    });
  }
  Napi::Value namedBuffers(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto st = state(info.Env());
      auto bufs = st->module->named_buffers(true);
      Napi::Array out = Napi::Array::New(info.Env(), bufs.size());
      uint32_t i = 0;
      for (const auto& kv : bufs) {
        Napi::Array pair = Napi::Array::New(info.Env(), 2);
        pair.Set(0u, Napi::String::New(info.Env(), kv.key()));
        pair.Set(1u, wrapTensor(info.Env(), kv.value()));
        out.Set(i++, pair);
      }
      return out;
    });
  }

  // loadStateDict(entries: [name, NativeTensor][], strict): validates every key and shape first, then copies
  // on a worker; any problem rejects with ERR_CHECKPOINT_KEYS listing all of them and changes nothing.
  Napi::Value loadStateDict(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      auto st = state(env);
      if (info.Length() < 1 || !info[0].IsArray()) throwJs(env, "ERR_INVALID_ARG", "loadStateDict expects [name, Tensor] entries");
      const bool strict = info.Length() < 2 || info[1].ToBoolean().Value();
      Napi::Array arr = info[0].As<Napi::Array>();
      std::vector<std::pair<std::string, at::Tensor>> incoming;
      incoming.reserve(arr.Length());
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        Napi::Array pair = arr.Get(i).As<Napi::Array>();
        std::string name = pair.Get(0u).As<Napi::String>().Utf8Value();
        incoming.emplace_back(name, unwrapTensor(env, pair.Get(1u), name.c_str()));
      }
      return runAsync(env, [st, incoming, strict]() -> ResultBuilder {
        std::lock_guard<std::mutex> lock(st->mu);
        StateDictMatch match = tssl::loadStateDict(*st->module, incoming, strict ? KeyPolicy::Strict : KeyPolicy::AllowMissingAndUnexpected, "");
        std::vector<std::string> missing = std::move(match.missing), unexpected = std::move(match.unexpected);
        return [missing, unexpected](Napi::Env env) -> Napi::Value {
          Napi::Object r = Napi::Object::New(env);
          Napi::Array m = Napi::Array::New(env, missing.size());
          for (uint32_t i = 0; i < missing.size(); ++i) m.Set(i, Napi::String::New(env, missing[i]));
          Napi::Array u = Napi::Array::New(env, unexpected.size());
          for (uint32_t i = 0; i < unexpected.size(); ++i) u.Set(i, Napi::String::New(env, unexpected[i]));
          r.Set("missing", m);
          r.Set("unexpected", u);
          return r;
        };
      });
    });
  }

  Napi::Value to(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto st = state(info.Env());
      at::Device dev = parseDevice(info.Env(), info[0].As<Napi::String>().Utf8Value());
      return runAsync(info.Env(), [st, dev]() -> ResultBuilder {
        std::lock_guard<std::mutex> lock(st->mu);
        st->module->to(dev);
        return nullptr;
      });
    });
  }

  // nn::Module::to() has no memory_format overload: convert 4-D weights in place (set_data keeps identity,
  // so optimizers holding the parameters see the new layout).
  Napi::Value setChannelsLast(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto st = state(info.Env());
      const bool on = info.Length() == 0 || info[0].ToBoolean().Value();
      std::lock_guard<std::mutex> lock(st->mu);
      torch::NoGradGuard noGrad;
      for (auto& p : st->module->parameters(true))
        if (p.dim() == 4) p.set_data(p.contiguous(on ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
      return info.Env().Undefined();
    });
  }

  Napi::Value dispose(const Napi::CallbackInfo& info) {
    state_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<ModuleState> state_;
};

Napi::Object wrapModule(Napi::Env env, std::shared_ptr<ModuleState> st) {
  return addonData(env).moduleCtor.New({Napi::External<std::shared_ptr<ModuleState>>::New(env, &st)});
}

Napi::Value createResNet(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = info[0].As<Napi::Object>();
    ResNetOptions opts;
    const char* w = "createResNet options";  // all required: lib/models.ts resnet() validates and defaults
    opts.depth = static_cast<int>(requiredInt(info.Env(), o, "depth", w));
    const std::string stem = requiredString(info.Env(), o, "stem", w);
    if (stem != "cifar" && stem != "imagenet") throwJs(info.Env(), "ERR_INVALID_ARG", "stem must be 'cifar' or 'imagenet'");
    opts.stem = stem == "cifar" ? Stem::Cifar : Stem::ImageNet;
    opts.numClasses = requiredInt(info.Env(), o, "numClasses", w);
    opts.zeroInitResidual = requiredBool(info.Env(), o, "zeroInitResidual", w);
    opts.torchvisionInit = requiredBool(info.Env(), o, "init", w);
    auto net = std::make_shared<ResNetImpl>(opts);
    auto st = std::make_shared<ModuleState>();
    st->module = net;
    st->kind = "resnet";
    st->forward = [net](const at::Tensor& x) { return net->forward(x); };
    st->featureMap = [net](const at::Tensor& x) { return net->featureMap(x); };
    return wrapModule(info.Env(), st);
  });
}

Napi::Value createProjector(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = info[0].As<Napi::Object>();
    // All required: lib/models.ts projector() resolves presets and defaults.
    ProjectorOptions opts = parseHead(info.Env(), o, "createProjector options");
    opts.inputDim = requiredInt(info.Env(), o, "inputDim", "createProjector options");
    auto seq = makeProjector(opts);
    auto st = std::make_shared<ModuleState>();
    st->module = seq.ptr();
    st->kind = "projector";
    const int64_t inputDim = opts.inputDim;
    st->forward = [seq, inputDim](const at::Tensor& x) mutable {
      TSSL_CHECK(x.dim() == 2 && x.size(1) == inputDim, "ERR_TORCH_SHAPE", "projector expects (N, ", inputDim, ") input but received shape ",
                 shapeString(x.sizes().vec()));
      return seq->forward(x);
    };
    return wrapModule(info.Env(), st);
  });
}

}  // namespace

ModuleAccess unwrapModule(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addonData(env).moduleCtor.Value()))
    throwJs(env, "ERR_INVALID_ARG", std::string(what) + " must be a model (ResNet or Projector)");
  auto st = ModuleWrap::Unwrap(v.As<Napi::Object>())->state(env);
  return {st->module, std::shared_ptr<std::mutex>(st, &st->mu), st->forward, st->featureMap, st->kind};
}

void initModule(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = ModuleWrap::define(env);
  addonData(env).moduleCtor = Napi::Persistent(ctor);
  exports.Set("NativeModule", ctor);
  exports.Set("createResNet", Napi::Function::New(env, createResNet));
  exports.Set("createProjector", Napi::Function::New(env, createProjector));
}

}  // namespace tssl::bindings
