// NativeOptimizer: LARS (native/optim/lars.h) or LibTorch's SGD over JS-supplied parameter groups.
// step() runs on a libuv worker; zeroGrad / lr access are synchronous and cheap.
#include <torch/optim/sgd.h>

#include <mutex>

#include "bindings/common.h"
#include "bindings/options.h"
#include "common/error.h"
#include "common/torch_compat.h"
#include "optim/lars.h"
#include "optim/schedule.h"

namespace tssl::bindings {
namespace {

struct OptimState {
  std::shared_ptr<torch::optim::Optimizer> opt;
  std::string kind;
  std::mutex mu;
};

optim::LARSOptions larsOptions(const Napi::Object& o, const optim::LARSOptions& base) {
  optim::LARSOptions r = base;
  r.lr(optionalNumber(o, "lr", base.lr()));
  r.momentum(optionalNumber(o, "momentum", base.momentum()));
  r.dampening(optionalNumber(o, "dampening", base.dampening()));
  r.weight_decay(optionalNumber(o, "weightDecay", base.weight_decay()));
  r.nesterov(optionalBool(o, "nesterov", base.nesterov()));
  r.eta(optionalNumber(o, "eta", base.eta()));
  r.eps(optionalNumber(o, "eps", base.eps()));
  r.clip_lr(optionalBool(o, "clipLr", base.clip_lr()));
  r.exclude_bias_n_norm(optionalBool(o, "excludeBiasAndNorm", base.exclude_bias_n_norm()));
  return r;
}

torch::optim::SGDOptions sgdOptions(const Napi::Object& o, const torch::optim::SGDOptions& base) {
  torch::optim::SGDOptions r = base;
  r.lr(optionalNumber(o, "lr", base.lr()));
  r.momentum(optionalNumber(o, "momentum", base.momentum()));
  r.dampening(optionalNumber(o, "dampening", base.dampening()));
  r.weight_decay(optionalNumber(o, "weightDecay", base.weight_decay()));
  r.nesterov(optionalBool(o, "nesterov", base.nesterov()));
  return r;
}

at::Tensor* momentumBuffer(torch::optim::Optimizer& opt, const std::string& kind, const at::Tensor& p) {
  auto& state = opt.state();
  auto it = state.find(compat::optimizerStateKey(state, p));
  if (it == state.end()) return nullptr;
  if (kind == "lars") return &static_cast<optim::LARSParamState&>(*it->second).momentum_buffer();
  return &static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer();
}

class OptimizerWrap : public Napi::ObjectWrap<OptimizerWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeOptimizer",
                       {
                           InstanceMethod<&OptimizerWrap::step>("step"),
                           InstanceMethod<&OptimizerWrap::zeroGrad>("zeroGrad"),
                           InstanceMethod<&OptimizerWrap::groupCount>("groupCount"),
                           InstanceMethod<&OptimizerWrap::getGroup>("getGroup"),
                           InstanceMethod<&OptimizerWrap::setGroup>("setGroup"),
                           InstanceMethod<&OptimizerWrap::momentumBuffers>("momentumBuffers"),
                           InstanceMethod<&OptimizerWrap::setMomentumBuffers>("setMomentumBuffers"),
                           InstanceMethod<&OptimizerWrap::dispose>("dispose"),
                       });
  }

  explicit OptimizerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<OptimizerWrap>(info) {
    if (info.Length() == 1 && info[0].IsExternal()) state_ = *info[0].As<Napi::External<std::shared_ptr<OptimState>>>().Data();
    else throwJs(info.Env(), "ERR_INVALID_ARG", "NativeOptimizer cannot be constructed directly; use new LARS() / new SGD()");
  }

 private:
  std::shared_ptr<OptimState> st(Napi::Env env) const {
    if (!state_) throwJs(env, "ERR_DISPOSED", "the optimizer was used after dispose()");
    return state_;
  }
  torch::optim::OptimizerParamGroup& group(Napi::Env env, const Napi::Value& v) {
    auto s = st(env);
    const int64_t i = v.IsNumber() ? v.As<Napi::Number>().Int64Value() : -1;
    if (i < 0 || i >= static_cast<int64_t>(s->opt->param_groups().size())) throwJs(env, "ERR_INVALID_ARG", "parameter group index out of range");
    return s->opt->param_groups()[static_cast<size_t>(i)];
  }

  Napi::Value step(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto s = st(info.Env());
      return runAsync(info.Env(), [s]() -> ResultBuilder {
        std::lock_guard<std::mutex> lock(s->mu);
        s->opt->step();
        return nullptr;
      });
    });
  }

  Napi::Value zeroGrad(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto s = st(info.Env());
      std::lock_guard<std::mutex> lock(s->mu);
      for (auto& g : s->opt->param_groups())
        for (auto& p : g.params())
          if (p.grad().defined()) p.mutable_grad() = at::Tensor();  // set_to_none, as solo-learn
      return info.Env().Undefined();
    });
  }

  Napi::Value groupCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(st(info.Env())->opt->param_groups().size()));
  }

  Napi::Value getGroup(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      auto s = st(env);
      auto& g = group(env, info[0]);
      Napi::Object o = Napi::Object::New(env);
      if (s->kind == "lars") {
        auto& l = static_cast<optim::LARSOptions&>(g.options());
        o.Set("lr", l.lr());
        o.Set("momentum", l.momentum());
        o.Set("dampening", l.dampening());
        o.Set("weightDecay", l.weight_decay());
        o.Set("nesterov", l.nesterov());
        o.Set("eta", l.eta());
        o.Set("eps", l.eps());
        o.Set("clipLr", l.clip_lr());
        o.Set("excludeBiasAndNorm", l.exclude_bias_n_norm());
      } else {
        auto& l = static_cast<torch::optim::SGDOptions&>(g.options());
        o.Set("lr", l.lr());
        o.Set("momentum", l.momentum());
        o.Set("dampening", l.dampening());
        o.Set("weightDecay", l.weight_decay());
        o.Set("nesterov", l.nesterov());
      }
      o.Set("paramCount", static_cast<double>(g.params().size()));
      return o;
    });
  }

  Napi::Value setGroup(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      auto s = st(env);
      std::lock_guard<std::mutex> lock(s->mu);
      auto& g = group(env, info[0]);
      Napi::Object o = info[1].As<Napi::Object>();
      if (s->kind == "lars") {
        auto& l = static_cast<optim::LARSOptions&>(g.options());
        l = larsOptions(o, l);
      } else {
        auto& l = static_cast<torch::optim::SGDOptions&>(g.options());
        l = sgdOptions(o, l);
      }
      return env.Undefined();
    });
  }

  // [[NativeTensor | null, …] per group]: the momentum buffers (shared, not copied) for state saving.
  Napi::Value momentumBuffers(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      auto s = st(env);
      std::lock_guard<std::mutex> lock(s->mu);
      auto& groups = s->opt->param_groups();
      Napi::Array out = Napi::Array::New(env, groups.size());
      for (uint32_t gi = 0; gi < groups.size(); ++gi) {
        auto& params = groups[gi].params();
        Napi::Array a = Napi::Array::New(env, params.size());
        for (uint32_t pi = 0; pi < params.size(); ++pi) {
          at::Tensor* buf = momentumBuffer(*s->opt, s->kind, params[pi]);
          a.Set(pi, buf && buf->defined() ? Napi::Value(wrapTensor(env, buf->detach())) : env.Null());
        }
        out.Set(gi, a);
      }
      return out;
    });
  }

  Napi::Value setMomentumBuffers(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      auto s = st(env);
      std::lock_guard<std::mutex> lock(s->mu);
      auto& groups = s->opt->param_groups();
      Napi::Array in = info[0].As<Napi::Array>();
      if (in.Length() != groups.size()) throwJs(env, "ERR_INVALID_ARG", "optimizer state has a different number of parameter groups");
      for (uint32_t gi = 0; gi < groups.size(); ++gi) {
        Napi::Array a = in.Get(gi).As<Napi::Array>();
        auto& params = groups[gi].params();
        if (a.Length() != params.size())
          throwJs(env, "ERR_INVALID_ARG", "optimizer state has a different number of parameters in group " + std::to_string(gi));
        for (uint32_t pi = 0; pi < params.size(); ++pi) {
          Napi::Value v = a.Get(pi);
          if (v.IsNull() || v.IsUndefined()) continue;
          at::Tensor b = unwrapTensor(env, v, "momentum buffer");
          TSSL_CHECK(b.sizes() == params[pi].sizes(), "ERR_TORCH_SHAPE", "momentum buffer ", gi, "/", pi, " has shape ", shapeString(b.sizes().vec()),
                     " but the parameter has ", shapeString(params[pi].sizes().vec()));
          at::Tensor copy = b.detach().to(params[pi].options()).clone();
          auto key = compat::optimizerStateKey(s->opt->state(), params[pi]);
          if (s->kind == "lars") {
            auto ps = std::make_unique<optim::LARSParamState>();
            ps->momentum_buffer(copy);
            s->opt->state()[key] = std::move(ps);
          } else {
            auto ps = std::make_unique<torch::optim::SGDParamState>();
            ps->momentum_buffer(copy);
            s->opt->state()[key] = std::move(ps);
          }
        }
      }
      return env.Undefined();
    });
  }

  Napi::Value dispose(const Napi::CallbackInfo& info) {
    state_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<OptimState> state_;
};

// createOptimizer(kind, groups: [{ params: NativeTensor[], options }], defaults)
Napi::Value createOptimizer(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const std::string kind = info[0].As<Napi::String>().Utf8Value();
    Napi::Array groupsIn = info[1].As<Napi::Array>();
    Napi::Object defaults = info[2].As<Napi::Object>();
    auto s = std::make_shared<OptimState>();
    s->kind = kind;
    std::vector<torch::optim::OptimizerParamGroup> groups;
    // The defaults object is complete (lib/optim.ts merges LARS_DEFAULTS / SGD_DEFAULTS): every field is required.
    const char* w = "optimizer defaults";
    optim::LARSOptions larsDefaults(requiredNumber(env, defaults, "lr", w));
    if (kind == "lars") {
      larsDefaults.momentum(requiredNumber(env, defaults, "momentum", w)).dampening(requiredNumber(env, defaults, "dampening", w));
      larsDefaults.weight_decay(requiredNumber(env, defaults, "weightDecay", w)).nesterov(requiredBool(env, defaults, "nesterov", w));
      larsDefaults.eta(requiredNumber(env, defaults, "eta", w)).eps(requiredNumber(env, defaults, "eps", w));
      larsDefaults.clip_lr(requiredBool(env, defaults, "clipLr", w)).exclude_bias_n_norm(requiredBool(env, defaults, "excludeBiasAndNorm", w));
    }
    torch::optim::SGDOptions sgdDefaults = sgdOptions(defaults, torch::optim::SGDOptions(0.1));
    for (uint32_t gi = 0; gi < groupsIn.Length(); ++gi) {
      Napi::Object g = groupsIn.Get(gi).As<Napi::Object>();
      Napi::Array ps = g.Get("params").As<Napi::Array>();
      std::vector<at::Tensor> params;
      for (uint32_t i = 0; i < ps.Length(); ++i) {
        at::Tensor p = unwrapTensor(env, ps.Get(i), "parameter");
        TSSL_CHECK(p.is_floating_point(), "ERR_TORCH_DTYPE", "optimizer parameters must be floating point");
        TSSL_CHECK(p.is_leaf(), "ERR_INVALID_ARG", "optimizer parameter ", i, " of group ", gi, " is not a leaf tensor");
        params.push_back(p);
      }
      Napi::Object o = g.Get("options").IsObject() ? g.Get("options").As<Napi::Object>() : Napi::Object::New(env);
      if (kind == "lars") groups.emplace_back(params, std::make_unique<optim::LARSOptions>(larsOptions(o, larsDefaults)));
      else groups.emplace_back(params, std::make_unique<torch::optim::SGDOptions>(sgdOptions(o, sgdDefaults)));
    }
    if (kind == "lars") s->opt = std::make_shared<optim::LARS>(groups, larsDefaults);
    else if (kind == "sgd") s->opt = std::make_shared<torch::optim::SGD>(groups, sgdDefaults);
    else throwJs(env, "ERR_INVALID_ARG", "unknown optimizer " + kind);
    return addonData(env).optimizerCtor.New({Napi::External<std::shared_ptr<OptimState>>::New(env, &s)});
  });
}

// warmupCosineLr(step, warmupSteps, totalSteps, baseLr, warmupStartLr, minLr) → number (optim/schedule.h; lib/optim.ts
// warmupCosine validates the arguments).
Napi::Value warmupCosineLr(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    double a[6];
    for (size_t i = 0; i < 6; ++i) {
      if (!info[i].IsNumber())
        throwJs(env, "ERR_INVALID_ARG", "warmupCosineLr expects (step, warmupSteps, totalSteps, baseLr, warmupStartLr, minLr)");
      a[i] = info[i].As<Napi::Number>().DoubleValue();
    }
    return Napi::Number::New(env, optim::warmupCosineLr(a[0], a[1], a[2], a[3], a[4], a[5]));
  });
}

}  // namespace

void initOptim(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = OptimizerWrap::define(env);
  addonData(env).optimizerCtor = Napi::Persistent(ctor);
  exports.Set("NativeOptimizer", ctor);
  exports.Set("createOptimizer", Napi::Function::New(env, createOptimizer));
  exports.Set("warmupCosineLr", Napi::Function::New(env, warmupCosineLr));
}

}  // namespace tssl::bindings
