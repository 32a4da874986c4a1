// The one place where LibTorch 1.13 and 2.x differ for us. Everything else compiles unchanged against both
// (tested: Debian 12's 1.13.1 with GCC 12, Debian 13's 2.6 with GCC 14, and its CUDA build; see
// scripts/debian13-lane.sh). Add a difference here, never as an #if in the code that uses it.
#pragma once
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>
#include <torch/nn/options/conv.h>
#include <torch/version.h>

#include <sstream>
#include <string>
#include <type_traits>
#include <variant>

// LibTorch 2.4 replaced the per-device autocast setters (set_cpu_enabled, get_autocast_gpu_dtype, ...)
// with ones that take the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define TSSL_AUTOCAST_BY_DEVICE_TYPE 1
#endif

namespace tssl::compat {

/// The key under which torch::optim::Optimizer keeps a parameter's state: `std::string` (the
/// TensorImpl's address printed, c10::guts::to_string) up to LibTorch 2.0, the `void*` address itself
/// since. Deduced from the optimizer's own map type, so it cannot drift from what LibTorch's
/// serialization and add_param_group use.
template <class StateMap>
typename StateMap::key_type optimizerStateKey(const StateMap& /*state*/, const at::Tensor& p) {
  using Key = typename StateMap::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;
    s << p.unsafeGetTensorImpl();
    return s.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

inline bool autocastEnabled(c10::DeviceType d) {
#ifdef TSSL_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::is_autocast_enabled(d);
#else
  return d == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

inline at::ScalarType autocastDtype(c10::DeviceType d) {
#ifdef TSSL_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::get_autocast_dtype(d);
#else
  return d == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

inline void setAutocast(c10::DeviceType d, bool enabled, at::ScalarType dtype) {
#ifdef TSSL_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_dtype(d, dtype);
  at::autocast::set_autocast_enabled(d, enabled);
#else
  if (d == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

/// A 2-d convolution's padding when given as numbers (nullptr for "same" / "valid"), and whether it pads with zeros.
/// The options hold c10::variant up to LibTorch 2.0 and std::variant since: `get_if` is found by argument-dependent
/// lookup in whichever namespace the variant lives.
inline const torch::ExpandingArray<2>* convPaddingNumbers(const torch::nn::detail::ConvNdOptions<2>& o) {
  using std::get_if;
  return get_if<torch::ExpandingArray<2>>(&o.padding());
}
inline bool convPadsWithZeros(const torch::nn::detail::ConvNdOptions<2>& o) {
  using std::get_if;
  return get_if<torch::enumtype::kZeros>(&o.padding_mode()) != nullptr;
}

}  // namespace tssl::compat
