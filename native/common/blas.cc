#include "common/blas.h"

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>

namespace tssl {
namespace {

int isaRank(const std::string& isa) { return isa == "avx512" ? 3 : isa == "avx2" ? 2 : isa == "avx" ? 1 : 0; }

std::string cpuIsa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq"))
    return "avx512";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
  if (__builtin_cpu_supports("avx")) return "avx";
  return "sse";
}

// The instruction set an OpenBLAS core's kernels use (OpenBLAS's names, as openblas_get_corename() spells them).
std::string coreIsa(std::string core) {
  std::transform(core.begin(), core.end(), core.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  for (const char* c : {"skylakex", "cooperlake", "sapphirerapids"})
    if (core == c) return "avx512";
  for (const char* c : {"haswell", "zen", "excavator", "steamroller", "skylake"})
    if (core == c) return "avx2";
  for (const char* c : {"sandybridge", "bulldozer", "piledriver"})
    if (core == c) return "avx";
  return "sse";
}

template <typename F>
F symbol(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}

BlasInfo probeAndFix() {
  BlasInfo info;
  info.cpuIsa = cpuIsa();
  auto corename = symbol<char* (*)()>("openblas_get_corename");
  auto config = symbol<char* (*)()>("openblas_get_config");
  auto init = symbol<void (*)()>("gotoblas_dynamic_init");
  auto quit = symbol<void (*)()>("gotoblas_dynamic_quit");
  if (!corename) return info;
  info.library = "OpenBLAS";
  if (config) info.config = config();
  auto reinit = [&](const char* core) {
    setenv("OPENBLAS_CORETYPE", core, 1);
    quit();
    init();
    unsetenv("OPENBLAS_CORETYPE");  // children of this process see the environment they were given
  };
  const bool userSet = std::getenv("OPENBLAS_CORETYPE") != nullptr;
  // Tests: make OpenBLAS misread the CPU as the named core first, to exercise the correction on any machine.
  const char* simulate = std::getenv("TORCH_SSL_SIMULATE_BLAS_MISREAD");
  if (simulate && *simulate && !userSet && init && quit) reinit(simulate);
  info.detected = info.core = corename();
  if (userSet) {
    info.chosenBy = "OPENBLAS_CORETYPE";
    return info;
  }
  info.chosenBy = "OpenBLAS";
  const std::string want = info.cpuIsa == "avx512" ? "SKYLAKEX" : info.cpuIsa == "avx2" ? (__builtin_cpu_is("amd") ? "ZEN" : "HASWELL") : "";
  // Only a core below AVX2 on an AVX2 / AVX-512 CPU is a misreading; an AVX2 core on an AVX-512 CPU (as 0.3.21
  // on AMD Zen 4) is OpenBLAS's own choice and stays.
  if (!want.empty() && isaRank(coreIsa(info.core)) < 2 && init && quit) {
    reinit(want.c_str());
    info.core = corename();
    info.chosenBy = "torch-ssl";
  }
  return info;
}

}  // namespace

BlasInfo ensureBlasCore() {
  static std::once_flag once;
  static BlasInfo info;
  std::call_once(once, [] { info = probeAndFix(); });
  return info;
}

}  // namespace tssl
