// Process switches read from the environment: TORCH_SSL_<NAME>=0 turns a kernel path off (docs/threads.md lists them).
#pragma once
#include <cstdlib>
#include <cstring>

namespace tssl {

/// Whether the environment variable `name` is set to exactly "0".
inline bool switchedOff(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "0") == 0;
}

/// Whether torch-ssl's own kernels may use AVX-512 where the CPU has it: not with TORCH_SSL_MAX_CPU_ISA=avx2, which
/// caps them as ONEDNN_MAX_CPU_ISA=AVX2 caps oneDNN (scripts/emulate-avx2.sh sets both, to run as an AVX2-only CPU).
inline bool avx512Allowed() {
  const char* v = std::getenv("TORCH_SSL_MAX_CPU_ISA");
  return !(v && (std::strcmp(v, "avx2") == 0 || std::strcmp(v, "AVX2") == 0));
}

}  // namespace tssl
