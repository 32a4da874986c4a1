// NativeTensor: a JS handle owning one at::Tensor reference. dispose() resets the reference (never
// release_resources(), which would free storage shared with other aliases such as module parameters).
#include <torch/autograd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "bindings/common.h"
#include "common/device.h"
#include "common/error.h"
#include "models/batch_norm_act.h"
#include "models/conv.h"
#include "models/winograd.h"

namespace tssl::bindings {
namespace {

std::atomic<int64_t> liveHandles{0};

class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeTensor",
                       {
                           InstanceAccessor<&TensorWrap::shape>("shape"),
                           InstanceAccessor<&TensorWrap::dtype>("dtype"),
                           InstanceAccessor<&TensorWrap::device>("device"),
                           InstanceAccessor<&TensorWrap::requiresGrad, &TensorWrap::setRequiresGrad>("requiresGrad"),
                           InstanceAccessor<&TensorWrap::grad, &TensorWrap::setGrad>("grad"),
                           InstanceAccessor<&TensorWrap::disposed>("disposed"),
                           InstanceAccessor<&TensorWrap::nbytes>("nbytes"),
                           InstanceMethod<&TensorWrap::toBuffer>("toBuffer"),
                           InstanceMethod<&TensorWrap::toSharedBuffer>("toSharedBuffer"),
                           InstanceMethod<&TensorWrap::item>("item"),
                           InstanceMethod<&TensorWrap::backward>("backward"),
                           InstanceMethod<&TensorWrap::dispose>("dispose"),
                           InstanceMethod<&TensorWrap::op>("op"),
                           InstanceMethod<&TensorWrap::to>("to"),
                           StaticMethod<&TensorWrap::liveCount>("liveCount"),
                       });
  }

  explicit TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {
    if (info.Length() == 1 && info[0].IsExternal()) {
      tensor_ = *info[0].As<Napi::External<at::Tensor>>().Data();
      track(info.Env());
    } else {
      throwJs(info.Env(), "ERR_INVALID_ARG", "NativeTensor cannot be constructed directly; use Tensor.from()");
    }
  }

  ~TensorWrap() override = default;

  void Finalize(Napi::Env env) override { release(env); }

  at::Tensor get(Napi::Env env, const char* what) const {
    if (!tensor_.defined()) throwJs(env, "ERR_DISPOSED", std::string(what) + " was used after dispose()");
    return tensor_;
  }

 private:
  void track(Napi::Env env) {
    ++liveHandles;
    counted_ = true;
    // Report only storage this handle is likely the sole owner of; views of parameters are not counted twice.
    if (tensor_.defined() && tensor_.has_storage()) {
      reported_ = static_cast<int64_t>(tensor_.storage().nbytes());
      if (reported_ > 0) Napi::MemoryManagement::AdjustExternalMemory(env, reported_);
    }
  }

  void release(Napi::Env env) {
    tensor_ = at::Tensor();
    if (counted_) {
      --liveHandles;
      counted_ = false;
    }
    if (reported_ > 0) {
      Napi::MemoryManagement::AdjustExternalMemory(env, -reported_);
      reported_ = 0;
    }
  }

  Napi::Value shape(const Napi::CallbackInfo& info) {
    at::Tensor t = get(info.Env(), "Tensor");
    Napi::Array a = Napi::Array::New(info.Env(), t.dim());
    for (int64_t i = 0; i < t.dim(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(t.size(i))));
    return a;
  }
  Napi::Value dtype(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), dtypeName(get(info.Env(), "Tensor").scalar_type())); }
  Napi::Value device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), get(info.Env(), "Tensor").device().str()); }
  Napi::Value requiresGrad(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), get(info.Env(), "Tensor").requires_grad()); }
  void setRequiresGrad(const Napi::CallbackInfo& info, const Napi::Value& v) {
    guarded(info.Env(), [&] {
      if (!v.IsBoolean()) throwJs(info.Env(), "ERR_INVALID_ARG", "requiresGrad must be a boolean");
      get(info.Env(), "Tensor").set_requires_grad(v.As<Napi::Boolean>().Value());
    });
  }
  Napi::Value grad(const Napi::CallbackInfo& info) {
    at::Tensor g = get(info.Env(), "Tensor").grad();
    if (!g.defined()) return info.Env().Null();
    return wrapTensor(info.Env(), g);
  }
  void setGrad(const Napi::CallbackInfo& info, const Napi::Value& v) {
    guarded(info.Env(), [&] {
      at::Tensor t = get(info.Env(), "Tensor");
      if (v.IsNull() || v.IsUndefined()) {
        t.mutable_grad() = at::Tensor();
        return;
      }
      at::Tensor g = unwrapTensor(info.Env(), v, "grad");
      TSSL_CHECK(g.sizes() == t.sizes(), "ERR_TORCH_SHAPE", "grad must have the tensor's shape ", shapeString(t.sizes().vec()), " but has shape ",
                 shapeString(g.sizes().vec()));
      TSSL_CHECK(g.scalar_type() == t.scalar_type(), "ERR_TORCH_DTYPE", "grad must have dtype ", dtypeName(t.scalar_type()), " but has ",
                 dtypeName(g.scalar_type()));
      TSSL_CHECK(g.device() == t.device(), "ERR_TORCH_DEVICE", "grad must be on ", t.device().str());
      t.mutable_grad() = g;
    });
  }
  Napi::Value disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !tensor_.defined()); }
  Napi::Value nbytes(const Napi::CallbackInfo& info) {
    at::Tensor t = get(info.Env(), "Tensor");
    return Napi::Number::New(info.Env(), static_cast<double>(t.numel() * t.element_size()));
  }

  // A contiguous CPU copy of the elements, as an ArrayBuffer the TS side views with the right typed array.
  Napi::Value toBuffer(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      at::Tensor t = get(info.Env(), "Tensor").detach().to(at::kCPU).contiguous();
      const size_t n = static_cast<size_t>(t.numel()) * t.element_size();
      Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(info.Env(), n);
      if (n > 0) std::memcpy(buf.Data(), t.data_ptr(), n);
      return buf;
    });
  }

  // The elements without a copy: an external ArrayBuffer over the tensor's own storage, which stays alive
  // until the buffer is collected. For tensors nothing mutates afterwards (the trainer's checkpoint
  // snapshots): copying ~70 MB on the JS thread at every checkpoint held the event loop for ~100 ms.
  Napi::Value toSharedBuffer(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      at::Tensor t = get(env, "Tensor").detach();
      if (!t.device().is_cpu() || !t.is_contiguous()) t = t.to(at::kCPU).contiguous();
      const size_t n = static_cast<size_t>(t.numel()) * t.element_size();
      if (n == 0) return Napi::ArrayBuffer::New(env, 0);
      auto* keep = new at::Tensor(t);
      // V8 accounts an ArrayBuffer's backing store itself (external or not): no AdjustExternalMemory here.
      napi_value ab = nullptr;
      const napi_status st = napi_create_external_arraybuffer(
          env, keep->data_ptr(), n, [](napi_env, void*, void* k) { delete static_cast<at::Tensor*>(k); }, keep, &ab);
      if (st == napi_ok) return Napi::ArrayBuffer(env, ab);
      // Runtimes that forbid external buffers (e.g. a V8 sandbox): copy instead.
      delete keep;
      Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, n);
      std::memcpy(buf.Data(), t.data_ptr(), n);
      return buf;
    });
  }

  Napi::Value item(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      at::Tensor t = get(info.Env(), "Tensor");
      TSSL_CHECK(t.numel() == 1, "ERR_TORCH_SHAPE", "item() needs a one-element tensor but the shape is ", shapeString(t.sizes().vec()));
      if (t.scalar_type() == at::kBool) return Napi::Boolean::New(info.Env(), t.item<bool>());
      if (t.scalar_type() == at::kLong) return Napi::Number::New(info.Env(), static_cast<double>(t.item<int64_t>()));
      return Napi::Number::New(info.Env(), t.item<double>());
    });
  }

  // backward(grad?) runs the autograd engine on a worker thread.
  Napi::Value backward(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      at::Tensor t = get(info.Env(), "Tensor");
      at::Tensor g;
      if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull()) g = unwrapTensor(info.Env(), info[0], "gradient");
      TSSL_CHECK(t.requires_grad(), "ERR_TORCH_VALUE", "backward() called on a tensor that does not require grad and has no grad_fn");
      TSSL_CHECK(g.defined() || t.numel() == 1, "ERR_TORCH_SHAPE", "backward() without a gradient needs a scalar tensor but the shape is ",
                 shapeString(t.sizes().vec()));
      return runAsync(info.Env(), [t, g]() -> ResultBuilder {
        t.backward(g);
        return nullptr;
      });
    });
  }

  Napi::Value dispose(const Napi::CallbackInfo& info) {
    release(info.Env());
    return info.Env().Undefined();
  }

  // Small, synchronous tensor ops the TS facade exposes (cheap or view-producing).
  Napi::Value op(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      at::Tensor t = get(env, "Tensor");
      std::string name = info[0].As<Napi::String>().Utf8Value();
      auto intList = [&](uint32_t i) {
        Napi::Array a = info[i].As<Napi::Array>();
        std::vector<int64_t> v(a.Length());
        for (uint32_t k = 0; k < a.Length(); ++k) v[k] = a.Get(k).As<Napi::Number>().Int64Value();
        return v;
      };
      auto num = [&](uint32_t i) { return info[i].As<Napi::Number>().DoubleValue(); };
      if (name == "detach") return wrapTensor(env, t.detach());
      if (name == "clone") return wrapTensor(env, t.clone());
      if (name == "contiguous") return wrapTensor(env, t.contiguous());
      if (name == "reshape") return wrapTensor(env, t.reshape(intList(1)));
      if (name == "permute") return wrapTensor(env, t.permute(intList(1)));
      if (name == "narrow")
        return wrapTensor(env, t.narrow(static_cast<int64_t>(num(1)), static_cast<int64_t>(num(2)), static_cast<int64_t>(num(3))));
      if (name == "select") return wrapTensor(env, t.select(static_cast<int64_t>(num(1)), static_cast<int64_t>(num(2))));
      if (name == "sum") return wrapTensor(env, t.sum());
      if (name == "mean") return wrapTensor(env, t.mean());
      if (name == "mulScalar") return wrapTensor(env, t.mul(num(1)));
      if (name == "addScalar") return wrapTensor(env, t.add(num(1)));
      if (name == "add") return wrapTensor(env, t.add(unwrapTensor(env, info[1], "other")));
      if (name == "sub") return wrapTensor(env, t.sub(unwrapTensor(env, info[1], "other")));
      if (name == "mul") return wrapTensor(env, t.mul(unwrapTensor(env, info[1], "other")));
      if (name == "matmul") return wrapTensor(env, t.matmul(unwrapTensor(env, info[1], "other")));
      // Internal, for test/conv-grad.test.ts: models/conv.h's weight gradient as one GEMM (t = grad_output).
      if (name == "convWeightGradByGemm") {
        const auto kernel = intList(2);
        TSSL_CHECK(kernel.size() == 2, "ERR_INVALID_ARG", "convWeightGradByGemm: kernel must be [kh, kw]");
        return wrapTensor(env, convWeightGradByGemm(t, unwrapTensor(env, info[1], "input"), kernel[0], kernel[1], intList(3), intList(4)));
      }
      // Internal, for test/conv-grad.test.ts: models/conv.h's 2×2 grid of four images, and back.
      if (name == "packGrid") return wrapTensor(env, packGrid(t));
      if (name == "unpackGrid") {
        const auto hw = intList(1);
        TSSL_CHECK(hw.size() == 2, "ERR_INVALID_ARG", "unpackGrid: expected [H, W]");
        return wrapTensor(env, unpackGrid(t, hw[0], hw[1]));
      }
      // Internal, for test/conv-grad.test.ts: models/conv.h's weight gradient computed 2 columns wider (t = grad_output).
      if (name == "convWeightGradPaddedWidth")
        return wrapTensor(env, convWeightGradPaddedWidth(t, unwrapTensor(env, info[1], "input"), unwrapTensor(env, info[2], "weight"), intList(3)));
      // Internal, for test/winograd.test.ts: models/winograd.h's convolution of t with info[1] and its two gradients
      // for grad_output info[2], as [y, grad_input, grad_weight].
      if (name == "winogradConv3x3") {
        const at::Tensor w = unwrapTensor(env, info[1], "weight"), g = unwrapTensor(env, info[2], "grad_output");
        const at::Tensor xr = t.detach().requires_grad_(true), wr = w.detach().requires_grad_(true);
        at::AutoGradMode grad(true);
        const at::Tensor y = winogradConv3x3(xr, wr);
        TSSL_CHECK(y.defined(), "ERR_UNSUPPORTED", "winogradConv3x3: no Winograd kernel for input ", t.sizes(), " and weight ", w.sizes(), ": ",
                   winogradStatus());
        TSSL_CHECK(g.sizes() == y.sizes(), "ERR_TORCH_SHAPE", "winogradConv3x3: grad_output ", g.sizes(), " does not match the output ", y.sizes());
        const auto grads = torch::autograd::grad({y}, {xr, wr}, {g});
        Napi::Array out = Napi::Array::New(env, 3);
        out.Set(0u, wrapTensor(env, y.detach()));
        out.Set(1u, wrapTensor(env, grads[0]));
        out.Set(2u, wrapTensor(env, grads[1]));
        return out;
      }
      // Internal, for test/batch-norm-act.test.ts: models/batch_norm_act.h's training-mode op on t with weight, bias,
      // residual (or null), running mean and variance (updated in place), factor, eps, relu, and its gradients for
      // grad_output info[9], as [y, grad_input, grad_weight, grad_bias, grad_residual (or null)].
      if (name == "batchNormAct") {
        const auto optional = [&](size_t i, const char* what) { return info[i].IsNull() ? at::Tensor() : unwrapTensor(env, info[i], what); };
        const at::Tensor w = unwrapTensor(env, info[1], "weight").detach().requires_grad_(true);
        const at::Tensor b = unwrapTensor(env, info[2], "bias").detach().requires_grad_(true);
        at::Tensor r = optional(3, "residual");
        if (r.defined()) r = r.detach().requires_grad_(true);
        const at::Tensor rm = optional(4, "running_mean"), rv = optional(5, "running_var");
        const double factor = info[6].As<Napi::Number>().DoubleValue(), eps = info[7].As<Napi::Number>().DoubleValue();
        const bool relu = info[8].As<Napi::Boolean>().Value();
        const at::Tensor g = unwrapTensor(env, info[9], "grad_output");
        const at::Tensor xr = t.detach().requires_grad_(true);
        at::AutoGradMode grad(true);
        const at::Tensor y = fusedBatchNormActTraining(xr, w, b, r, rm, rv, factor, eps, relu);
        TSSL_CHECK(y.defined(), "ERR_UNSUPPORTED", "batchNormAct: the fused kernels do not take input ", t.sizes(), " (", t.scalar_type(),
                   "): ", fusedBatchNormStatus());
        std::vector<at::Tensor> inputs{xr, w, b};
        if (r.defined()) inputs.push_back(r);
        const auto grads = torch::autograd::grad({y}, inputs, {g});
        Napi::Array out = Napi::Array::New(env, 5);
        out.Set(0u, wrapTensor(env, y.detach()));
        for (uint32_t i = 0; i < 3; ++i) out.Set(i + 1, wrapTensor(env, grads[i]));
        out.Set(4u, r.defined() ? Napi::Value(wrapTensor(env, grads[3])) : env.Null());
        return out;
      }
      if (name == "isfinite") return Napi::Boolean::New(env, t.isfinite().all().item<bool>());
      throwJs(env, "ERR_INVALID_ARG", "unknown tensor op " + name);
    });
  }

  Napi::Value to(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      at::Tensor t = get(env, "Tensor");
      at::Device device = t.device();
      at::ScalarType st = t.scalar_type();
      if (info.Length() > 0 && info[0].IsString()) device = parseDevice(env, info[0].As<Napi::String>().Utf8Value());
      if (info.Length() > 1 && info[1].IsString()) st = parseDtype(env, info[1].As<Napi::String>().Utf8Value());
      return wrapTensor(env, t.to(device, st));
    });
  }

  static Napi::Value liveCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(liveHandles.load())); }

  at::Tensor tensor_;
  bool counted_ = false;
  int64_t reported_ = 0;
};

int64_t productChecked(Napi::Env env, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throwJs(env, "ERR_TORCH_SHAPE", "shape " + shapeString(shape) + " has a negative dimension");
    if (d != 0 && n > (int64_t{1} << 50) / d) throwJs(env, "ERR_TORCH_SHAPE", "shape " + shapeString(shape) + " is too large");
    n *= d;
  }
  return n;
}

// fromBuffer(arrayBufferView, dtype, shape, requiresGrad, device): copies the bytes into a new tensor.
Napi::Value fromBuffer(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsTypedArray() || !info[1].IsString() || !info[2].IsArray())
      throwJs(env, "ERR_INVALID_ARG", "fromBuffer(typedArray, dtype, shape[, requiresGrad, device])");
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    at::ScalarType st = parseDtype(env, info[1].As<Napi::String>().Utf8Value());
    Napi::Array shapeArr = info[2].As<Napi::Array>();
    std::vector<int64_t> shape(shapeArr.Length());
    for (uint32_t i = 0; i < shapeArr.Length(); ++i) {
      Napi::Value d = shapeArr.Get(i);
      if (!d.IsNumber()) throwJs(env, "ERR_INVALID_ARG", "shape entries must be numbers");
      shape[i] = d.As<Napi::Number>().Int64Value();
    }
    const int64_t numel = productChecked(env, shape);
    const size_t bytes = static_cast<size_t>(numel) * c10::elementSize(st);
    if (ta.ByteLength() != bytes)
      throwJs(env, "ERR_TORCH_SHAPE",
              "data holds " + std::to_string(ta.ByteLength()) + " bytes but shape " + shapeString(shape) + " of " + dtypeName(st) + " needs " +
                  std::to_string(bytes));
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(st));
    if (bytes > 0) std::memcpy(t.data_ptr(), static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), bytes);
    if (info.Length() > 4 && info[4].IsString()) {
      at::Device dev = parseDevice(env, info[4].As<Napi::String>().Utf8Value());
      if (dev != t.device()) t = t.to(dev);
    }
    if (info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value()) {
      TSSL_CHECK(at::isFloatingType(st), "ERR_TORCH_DTYPE", "only floating-point tensors can require grad, not ", dtypeName(st));
      t.set_requires_grad(true);
    }
    return wrapTensor(env, t);
  });
}

}  // namespace

Napi::Object wrapTensor(Napi::Env env, at::Tensor t) {
  at::Tensor copy = std::move(t);
  return addonData(env).tensorCtor.New({Napi::External<at::Tensor>::New(env, &copy)});
}

at::Tensor unwrapTensor(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addonData(env).tensorCtor.Value()))
    throwJs(env, "ERR_INVALID_ARG", std::string("Expected a Tensor for ") + what);
  return Napi::ObjectWrap<TensorWrap>::Unwrap(v.As<Napi::Object>())->get(env, what);
}

at::ScalarType parseDtype(Napi::Env env, const std::string& n) {
  if (n == "float32") return at::kFloat;
  if (n == "float64") return at::kDouble;
  if (n == "float16") return at::kHalf;
  if (n == "bfloat16") return at::kBFloat16;
  if (n == "int8") return at::kChar;
  if (n == "int16") return at::kShort;
  if (n == "int32") return at::kInt;
  if (n == "int64") return at::kLong;
  if (n == "uint8") return at::kByte;
  if (n == "bool") return at::kBool;
  throwJs(env, "ERR_INVALID_ARG", "unknown dtype " + n);
}

std::string dtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "float32";
    case at::kDouble:
      return "float64";
    case at::kHalf:
      return "float16";
    case at::kBFloat16:
      return "bfloat16";
    case at::kChar:
      return "int8";
    case at::kShort:
      return "int16";
    case at::kInt:
      return "int32";
    case at::kLong:
      return "int64";
    case at::kByte:
      return "uint8";
    case at::kBool:
      return "bool";
    default:
      return c10::toString(t);
  }
}

at::Device parseDevice(Napi::Env env, const std::string& name) {
  try {
    return resolveDevice(name);
  } catch (const Error& e) {
    throwJs(env, e.code, e.what());
  }
}

void initTensor(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = TensorWrap::define(env);
  addonData(env).tensorCtor = Napi::Persistent(ctor);
  exports.Set("NativeTensor", ctor);
  exports.Set("fromBuffer", Napi::Function::New(env, fromBuffer));
}

}  // namespace tssl::bindings
