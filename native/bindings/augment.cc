// augmentOp(name, images, params) → NativeTensor: the functional augmentation ops with explicit
// parameters (what tests compare against torchvision.transforms.functional), and augmentBatch(images,
// view, seed) → the full sampled pipeline of one view.
#include <ATen/core/grad_mode.h>

#include "bindings/common.h"
#include "bindings/options.h"
#include "common/error.h"
#include "data/augment.h"

namespace tssl::bindings {

data::ViewAugment parseViewAugment(Napi::Env env, const Napi::Object& o);

namespace {

Napi::Value augmentOp(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    at::Tensor x = data::toFloatImages(unwrapTensor(env, info[1], "images"));
    Napi::Object p = info.Length() > 2 && info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object::New(env);
    auto factors = [&](const char* k) { return at::tensor(numbersOf(env, p.Get(k), "augmentOp parameters"), at::kDouble); };
    at::Tensor y;
    if (name == "resizedCrop") {
      std::vector<data::CropBox> boxes;
      Napi::Array b = p.Get("boxes").As<Napi::Array>();
      for (uint32_t i = 0; i < b.Length(); ++i) {
        auto v = numbersOf(env, b.Get(i), "augmentOp parameters");
        TSSL_CHECK(v.size() == 4, "ERR_INVALID_ARG", "boxes are [top, left, height, width]");
        boxes.push_back({int64_t(v[0]), int64_t(v[1]), int64_t(v[2]), int64_t(v[3])});
      }
      y = data::resizedCrop(x, boxes, p.Get("size").As<Napi::Number>().Int64Value(),
                            p.Get("interpolation").IsString() && p.Get("interpolation").As<Napi::String>().Utf8Value() == "bicubic");
    } else if (name == "brightness") y = data::adjustBrightness(x, factors("factors"));
    else if (name == "contrast") y = data::adjustContrast(x, factors("factors"));
    else if (name == "saturation") y = data::adjustSaturation(x, factors("factors"));
    else if (name == "hue") y = data::adjustHue(x, factors("factors"));
    else if (name == "grayscale") y = data::grayscale(x);
    else if (name == "gaussianBlur") y = data::gaussianBlur(x, p.Get("kernel").As<Napi::Number>().Int64Value(), factors("sigmas"));
    else if (name == "solarize") y = data::solarize(x, p.Get("threshold").As<Napi::Number>().DoubleValue());
    else if (name == "hflip") y = data::hflip(x);
    else if (name == "normalize")
      y = data::normalize(x, numbersOf(env, p.Get("mean"), "normalize mean"), numbersOf(env, p.Get("std"), "normalize std"));
    else throwJs(env, "ERR_INVALID_ARG", "unknown augmentation op " + name);
    return wrapTensor(env, y);
  });
}

Napi::Value augmentBatch(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    at::Tensor x = unwrapTensor(env, info[0], "images");
    data::ViewAugment a = parseViewAugment(env, info[1].As<Napi::Object>());
    const uint64_t seed = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
    return runAsync(env, [x, a, seed]() -> ResultBuilder {
      std::mt19937_64 rng(seed);
      at::Tensor y;
      {
        at::NoGradGuard g;
        y = data::augmentBatch(x, a, rng);
      }
      return [y](Napi::Env env) -> Napi::Value { return wrapTensor(env, y); };
    });
  });
}

}  // namespace

void initAugment(Napi::Env env, Napi::Object exports) {
  exports.Set("augmentOp", Napi::Function::New(env, augmentOp));
  exports.Set("augmentBatch", Napi::Function::New(env, augmentBatch));
}

}  // namespace tssl::bindings
