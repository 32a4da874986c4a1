// Reading option objects that JS passes to the bindings, in one place. `required*` fields are what the TS
// facade always supplies (its schema owns the defaults): a missing or mistyped one is ERR_INVALID_ARG naming
// the field. `optional*` fields take the fallback the caller states at the call site.
#pragma once
#include <napi.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "models/projector.h"

namespace tssl::bindings {

inline Napi::Value requiredField(Napi::Env env, const Napi::Object& o, const char* key, const char* where, bool ok(const Napi::Value&),
                                 const char* expected) {
  Napi::Value v = o.Get(key);
  if (!ok(v))
    throwJs(env, "ERR_INVALID_ARG", std::string(where) + "." + key + ": expected " + expected + (v.IsUndefined() ? ", but it is missing" : ""));
  return v;
}
inline bool isNumber(const Napi::Value& v) { return v.IsNumber(); }
inline bool isBoolean(const Napi::Value& v) { return v.IsBoolean(); }
inline bool isString(const Napi::Value& v) { return v.IsString(); }
inline bool isArray(const Napi::Value& v) { return v.IsArray(); }

inline double requiredNumber(Napi::Env env, const Napi::Object& o, const char* key, const char* where) {
  return requiredField(env, o, key, where, isNumber, "a number").As<Napi::Number>().DoubleValue();
}
inline int64_t requiredInt(Napi::Env env, const Napi::Object& o, const char* key, const char* where) {
  return requiredField(env, o, key, where, isNumber, "a number").As<Napi::Number>().Int64Value();
}
inline bool requiredBool(Napi::Env env, const Napi::Object& o, const char* key, const char* where) {
  return requiredField(env, o, key, where, isBoolean, "a boolean").As<Napi::Boolean>().Value();
}
inline std::string requiredString(Napi::Env env, const Napi::Object& o, const char* key, const char* where) {
  return requiredField(env, o, key, where, isString, "a string").As<Napi::String>().Utf8Value();
}
/// An array of numbers (each element checked).
inline std::vector<double> numbersOf(Napi::Env env, const Napi::Value& v, const std::string& what) {
  if (!v.IsArray()) throwJs(env, "ERR_INVALID_ARG", what + ": expected an array of numbers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<double> r(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber()) throwJs(env, "ERR_INVALID_ARG", what + "[" + std::to_string(i) + "]: expected a number");
    r[i] = e.As<Napi::Number>().DoubleValue();
  }
  return r;
}
inline std::vector<double> requiredNumbers(Napi::Env env, const Napi::Object& o, const char* key, const char* where) {
  return numbersOf(env, requiredField(env, o, key, where, isArray, "an array of numbers"), std::string(where) + "." + key);
}

inline double optionalNumber(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}
inline int64_t optionalInt(const Napi::Object& o, const char* key, int64_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int64Value() : fallback;
}
inline bool optionalBool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
}

/// Every numeric field of `o` by name (method options); a non-numeric field is ERR_INVALID_ARG.
inline std::map<std::string, double> numberFields(Napi::Env env, const Napi::Object& o, const char* where) {
  std::map<std::string, double> out;
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value v = o.Get(k);
    if (!v.IsNumber()) throwJs(env, "ERR_INVALID_ARG", std::string(where) + "." + k + ": expected a number");
    out[k] = v.As<Napi::Number>().DoubleValue();
  }
  return out;
}

/// A head (projector / predictor) as lib/native.ts NativeHead gives it; inputDim stays the caller's.
inline ProjectorOptions parseHead(Napi::Env env, const Napi::Object& h, const std::string& where) {
  const char* w = where.c_str();
  ProjectorOptions p;
  p.hiddenDims.clear();
  for (double d : requiredNumbers(env, h, "hiddenDims", w)) p.hiddenDims.push_back(int64_t(d));
  p.outputDim = requiredInt(env, h, "outputDim", w);
  p.batchNorm = requiredBool(env, h, "batchNorm", w);
  p.hiddenBias = requiredBool(env, h, "hiddenBias", w);
  const std::string ob = requiredString(env, h, "outputBias", w);
  if (ob == "on") p.outputBias = ProjectorOptions::OutputBias::On;
  else if (ob == "off") p.outputBias = ProjectorOptions::OutputBias::Off;
  else if (ob == "frozen") p.outputBias = ProjectorOptions::OutputBias::Frozen;
  else throwJs(env, "ERR_INVALID_ARG", where + ".outputBias: expected on, off or frozen");
  p.outputBatchNorm = requiredBool(env, h, "outputBatchNorm", w);
  p.outputBatchNormAffine = requiredBool(env, h, "outputBatchNormAffine", w);
  const std::string act = requiredString(env, h, "activation", w);
  if (act == "gelu") p.gelu = true;
  else if (act != "relu") throwJs(env, "ERR_INVALID_ARG", where + ".activation: expected relu or gelu");
  return p;
}

}  // namespace tssl::bindings
