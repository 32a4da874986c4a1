// Which BLAS kernels the engine's GEMMs (projector, loss, kNN) run on, and the fix for a BLAS that misreads
// the CPU: Debian 12's OpenBLAS 0.3.21 takes some AVX-512 Xeons for a "Prescott" (SSE3) core, a 6-7× slower
// sgemm. Where OPENBLAS_CORETYPE is unset (the user's or the machine's setting always wins) and OpenBLAS chose
// a core that lacks the CPU's AVX2 / AVX-512, its dynamic dispatch is re-initialised, once, with the core the
// CPU supports (SKYLAKEX for AVX-512, HASWELL or ZEN for AVX2). Nothing else in the process is changed.
#pragma once
#include <string>

namespace tssl {

struct BlasInfo {
  std::string library;   // "OpenBLAS" | "" (another BLAS: nothing is known or changed)
  std::string config;    // openblas_get_config(): version and build options
  std::string core;      // the kernels in use now (openblas_get_corename())
  std::string detected;  // what OpenBLAS chose by itself (== core unless torch-ssl corrected it)
  std::string chosenBy;  // "OpenBLAS" | "OPENBLAS_CORETYPE" (set by the user or the machine) | "torch-ssl"
  std::string cpuIsa;    // "avx512" | "avx2" | "avx" | "sse": what the CPU offers
};

/// Applies the correction described above (idempotent; call before the first GEMM) and reports.
BlasInfo ensureBlasCore();

}  // namespace tssl
