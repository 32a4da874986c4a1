// computeLoss(name, tensors[], options) → Promise<{ loss: NativeTensor, terms: { [name]: number } }>
#include "bindings/common.h"
#include "bindings/options.h"
#include "common/error.h"
#include "methods/method.h"

namespace tssl::bindings {
namespace {

Napi::Value computeLoss(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsArray() || !info[2].IsObject())
      throwJs(env, "ERR_INVALID_ARG", "computeLoss(name, tensors, options)");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    Napi::Array arr = info[1].As<Napi::Array>();
    std::vector<at::Tensor> ts;
    for (uint32_t i = 0; i < arr.Length(); ++i) ts.push_back(unwrapTensor(env, arr.Get(i), i == 0 ? "z1" : "z2"));
    std::shared_ptr<methods::Method> method = methods::makeMethod(name, numberFields(env, info[2].As<Napi::Object>(), "loss options"));
    const size_t want = method->views() == 2 ? 2 : 1;  // pairwise: z1, z2; otherwise one (V, N, D) tensor
    if (ts.size() != want) throwJs(env, "ERR_INVALID_ARG", name + " takes " + std::to_string(want) + " tensor(s)");
    auto run = [ts, method] { return methods::lossOnProjections(*method, ts); };
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

void initLosses(Napi::Env env, Napi::Object exports) { exports.Set("computeLoss", Napi::Function::New(env, computeLoss)); }

}  // namespace tssl::bindings
