// Makes LibTorch see an AVX2-only x86 CPU (scripts/emulate-avx2.sh preloads it): after cpuinfo's own
// initialization, every AVX-512 feature reads as absent (Debian 12's cpuinfo has no AMX fields). LibTorch decides from these flags whether
// bf16 matrix products and convolutions may use oneDNN (AVX-512 needed) or fall back to its emulated
// kernels, as it does on an AVX2 machine. oneDNN and OpenBLAS are capped by their own variables.
#define _GNU_SOURCE
#include <cpuinfo.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

bool cpuinfo_initialize(void) {
  // libcpuinfo is loaded by LibTorch, often into a local scope (Python, Node addons): look it up by name.
  void *lib = dlopen("libcpuinfo.so.0", RTLD_NOW | RTLD_NOLOAD);
  if (!lib) lib = dlopen("libcpuinfo.so.0", RTLD_NOW);
  bool (*real)(void) = lib ? (bool (*)(void))dlsym(lib, "cpuinfo_initialize") : NULL;
  if (!real) {
    fprintf(stderr, "cpuinfo-avx2: libcpuinfo's cpuinfo_initialize not found\n");
    abort();
  }
  bool ok = real();
  struct cpuinfo_x86_isa *isa = (struct cpuinfo_x86_isa *)dlsym(lib, "cpuinfo_isa");
  if (ok && isa) {
    isa->avx512f = isa->avx512pf = isa->avx512er = isa->avx512cd = isa->avx512dq = isa->avx512bw = false;
    isa->avx512vl = isa->avx512ifma = isa->avx512vbmi = isa->avx512vbmi2 = isa->avx512bitalg = false;
    isa->avx512vpopcntdq = isa->avx512vnni = isa->avx512bf16 = isa->avx512vp2intersect = false;
    isa->avx512_4vnniw = isa->avx512_4fmaps = false;
  }
  return ok;
}
