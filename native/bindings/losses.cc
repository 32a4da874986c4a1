// computeLoss(name, tensors[], options) → Promise<{ loss: NativeTensor, terms: { [name]: number } }>
#include "bindings/common.h"
#include "common/error.h"
#include "losses/losses.h"

namespace tssl::bindings {
namespace {

double optNumber(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

Napi::Value computeLoss(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsArray() || !info[2].IsObject())
      throwJs(env, "ERR_INVALID_ARG", "computeLoss(name, tensors, options)");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    Napi::Array arr = info[1].As<Napi::Array>();
    std::vector<at::Tensor> ts;
    for (uint32_t i = 0; i < arr.Length(); ++i) ts.push_back(unwrapTensor(env, arr.Get(i), i == 0 ? "z1" : "z2"));
    Napi::Object o = info[2].As<Napi::Object>();
    std::function<losses::LossResult()> run;
    if (name == "vicreg") {
      losses::VICRegOptions opt;
      opt.simWeight = optNumber(o, "simWeight", opt.simWeight);
      opt.varWeight = optNumber(o, "varWeight", opt.varWeight);
      opt.covWeight = optNumber(o, "covWeight", opt.covWeight);
      run = [ts, opt] { return losses::vicreg(ts.at(0), ts.at(1), opt); };
    } else if (name == "barlow") {
      losses::BarlowOptions opt;
      opt.lambda = optNumber(o, "lambda", opt.lambda);
      opt.scale = optNumber(o, "scale", opt.scale);
      run = [ts, opt] { return losses::barlow(ts.at(0), ts.at(1), opt); };
    } else if (name == "simclr") {
      losses::SimCLROptions opt;
      opt.temperature = optNumber(o, "temperature", opt.temperature);
      run = [ts, opt] { return losses::simclr(ts.at(0), opt); };
    } else if (name == "tcr") {
      losses::TCROptions opt;
      opt.eps = optNumber(o, "eps", opt.eps);
      opt.lambda = optNumber(o, "lambda", opt.lambda);
      run = [ts, opt] { return losses::tcr(ts.at(0), opt); };
    } else {
      throwJs(env, "ERR_INVALID_ARG", "unknown loss " + name);
    }
    const size_t want = (name == "vicreg" || name == "barlow") ? 2 : 1;
    if (ts.size() != want) throwJs(env, "ERR_INVALID_ARG", name + " takes " + std::to_string(want) + " tensor(s)");
    return runAsync(env, [run]() -> ResultBuilder {
      losses::LossResult r = run();
      at::Tensor terms = r.terms.to(at::kCPU, at::kDouble);
      std::vector<double> values(terms.data_ptr<double>(), terms.data_ptr<double>() + terms.numel());
      at::Tensor loss = r.loss;
      std::vector<std::string> names = r.termNames;
      return [loss, values, names](Napi::Env env) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("loss", wrapTensor(env, loss));
        Napi::Object t = Napi::Object::New(env);
        for (size_t i = 0; i < names.size(); ++i) t.Set(names[i], Napi::Number::New(env, values[i]));
        out.Set("terms", t);
        return out;
      };
    });
  });
}

}  // namespace

void initLosses(Napi::Env env, Napi::Object exports) {
  exports.Set("computeLoss", Napi::Function::New(env, computeLoss));
}

}  // namespace tssl::bindings
