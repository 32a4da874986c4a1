// Turning a device name the user gave ('cpu', 'cuda', 'cuda:1') into an at::Device that can be used, or a
// typed error that says why not: ERR_INVALID_ARG for a name LibTorch does not parse, ERR_TORCH_DEVICE for
// a device this process cannot use (a CPU-only LibTorch, a CUDA build on a machine with no visible GPU,
// an index past the device count).
#pragma once
#include <c10/core/Device.h>

#include <string>

namespace tssl {

/// True when the engine was compiled against a CUDA LibTorch (TSSL_WITH_CUDA), whether or not a GPU is visible.
bool cudaBuild();
/// Number of CUDA devices visible to this process (0 on a CPU build or without a GPU).
int64_t cudaDeviceCount();
/// The usable device named `name`; `what`, when given, names the option in messages (e.g. "config.device").
c10::Device resolveDevice(const std::string& name, const std::string& what = "");

}  // namespace tssl
