#include "common/device.h"

#include <ATen/Context.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <optional>

#include "common/error.h"

namespace tssl {

bool cudaBuild() {
#ifdef TSSL_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int64_t cudaDeviceCount() { return at::hasCUDA() ? static_cast<int64_t>(at::getNumGPUs()) : 0; }

c10::Device resolveDevice(const std::string& name, const std::string& what) {
  std::optional<c10::Device> parsed;
  try {
    parsed.emplace(name);
  } catch (const c10::Error&) {
  }
  const std::string prefix = what.empty() ? "" : what + ": ";
  TSSL_CHECK(parsed.has_value() && (parsed->is_cpu() || parsed->is_cuda()), "ERR_INVALID_ARG", prefix, "invalid device '", name,
             "' (expected 'cpu', 'cuda' or 'cuda:N')");
  const c10::Device d = *parsed;
  if (d.is_cpu()) return d;
  TSSL_CHECK(cudaBuild(), "ERR_TORCH_DEVICE", prefix, "device '", name, "' requested but torch-ssl was built against a ", "LibTorch ", TORCH_VERSION,
             " without CUDA (cpu only); rebuild it against a CUDA LibTorch (see README, ", "Building elsewhere)");
  const int64_t count = cudaDeviceCount();
  TSSL_CHECK(count > 0, "ERR_TORCH_DEVICE", prefix, "device '", name, "' requested but no CUDA GPU is visible to this ",
             "process (torch-ssl is a CUDA build of LibTorch ", TORCH_VERSION, "; check the NVIDIA driver and ", "CUDA_VISIBLE_DEVICES)");
  TSSL_CHECK(!d.has_index() || d.index() < count, "ERR_TORCH_DEVICE", prefix, "device '", name, "' requested but only ", count,
             " CUDA device(s) are visible (cuda:0 to cuda:", count - 1, ")");
  return d;
}

}  // namespace tssl
