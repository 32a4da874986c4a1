#!/usr/bin/env bash
# Runs a command (by default the whole test suite) as it would run on an AVX2-only x86 CPU such as AMD EPYC
# Rome/Milan, on a machine that has AVX-512: the suite must pass on both kinds of CPU, and CI runs on
# whichever kind it is given. Every library whose arithmetic depends on the instruction set is moved to its
# AVX2 code path, in this process and in every child (the Python PyTorch oracle included):
#   - LibTorch and PyTorch: scripts/avx2/cpuinfo-avx2.c is preloaded, so cpuinfo reports no AVX-512; they
#     then compute bf16 matrix products and convolutions with their emulated kernels, not oneDNN's;
#   - oneDNN (float32 convolutions and matrix products): ONEDNN_MAX_CPU_ISA=AVX2;
#   - OpenBLAS (float32 GEMM, e.g. kNN similarities): OPENBLAS_CORETYPE=Zen, the kernels it picks on EPYC;
#   - torch-ssl's own check for native bf16: TORCH_SSL_ASSUME_NO_BF16=1.
#   - ATen's own vectorized kernels: ATEN_CPU_CAPABILITY=avx2 (Debian's LibTorch 1.13 runs them at AVX2 on
#     either kind of CPU anyway: torch.__config__.show() says "CPU capability usage: AVX2").
# The PyTorch references are regenerated under the emulation into .cache/fixtures-avx2 (as they would be on
# an AVX2 machine), leaving .cache/fixtures alone.
#
#   bash scripts/emulate-avx2.sh              # npm test, AVX2 code paths
#   bash scripts/emulate-avx2.sh npx vitest run test/features.test.ts
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -eq 0 ]; then set -- npm test; fi
if [ "$(uname -m)" != x86_64 ] || ! grep -qw avx2 /proc/cpuinfo; then echo "emulate-avx2: needs an x86-64 CPU with AVX2" >&2; exit 2; fi
if ! grep -qw avx512f /proc/cpuinfo; then
  echo "emulate-avx2: this CPU is AVX2-only already: running the command as it is, without emulation" >&2
  exec "$@"
fi
case "$(pwd)" in
  *[[:space:]:]*) echo "emulate-avx2: LD_PRELOAD cannot name a file under $(pwd) (a space or a colon in it)" >&2; exit 2 ;;
esac
python=${TORCH_SSL_PYTHON:-/usr/bin/python3}

if [ ! -f /usr/include/cpuinfo.h ]; then
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libcpuinfo-dev >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libcpuinfo-dev >/dev/null; }
  else
    echo "emulate-avx2: needs /usr/include/cpuinfo.h: sudo apt-get install libcpuinfo-dev" >&2; exit 2
  fi
fi
mkdir -p .cache/avx2
shim=.cache/avx2/cpuinfo-avx2.so
if [ ! -f "$shim" ] || [ scripts/avx2/cpuinfo-avx2.c -nt "$shim" ]; then
  gcc -O2 -Wall -shared -fPIC -o "$shim.tmp" scripts/avx2/cpuinfo-avx2.c -ldl
  mv "$shim.tmp" "$shim"
fi

export LD_PRELOAD="$(pwd)/$shim${LD_PRELOAD:+:$LD_PRELOAD}"
export ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2
# ATen's own kernels: already AVX2 in Debian's builds; this makes it hold for any build.
export ATEN_CPU_CAPABILITY=avx2
# Some machines set OPENBLAS_CORETYPE themselves, because older OpenBLAS builds miscompute on their CPU: keep it,
# unless it names AVX-512 kernels (then this would not be an AVX2 run: say so and stop).
case "${OPENBLAS_CORETYPE:-}" in
  [Ss]kylake[Xx] | [Cc]ooperlake | [Ss]apphire[Rr]apids)
    echo "emulate-avx2: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE (AVX-512 kernels) is set by this machine; unset it for this command to emulate AVX2" >&2
    exit 2 ;;
esac
if [ -n "${OPENBLAS_CORETYPE:-}" ] && [ "$OPENBLAS_CORETYPE" != Zen ]; then
  echo "emulate-avx2: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE is set by this machine; keeping it (OpenBLAS runs its kernels, not Zen's)" >&2
  blas_expected=$OPENBLAS_CORETYPE
else
  export OPENBLAS_CORETYPE=Zen
  blas_expected=Zen
fi
export TORCH_SSL_ASSUME_NO_BF16=1
# torch-ssl's own kernels (the fused BatchNorm): their AVX2 code paths, as oneDNN's.
export TORCH_SSL_MAX_CPU_ISA=avx2
export TORCH_SSL_FIXTURES="$(pwd)/.cache/fixtures-avx2"

# Prove that the emulation took hold before spending minutes on tests: oneDNN reports AVX2, runs no bf16
# primitive (PyTorch computes bf16 itself, as on AVX2), and OpenBLAS names its Zen kernels.
probe=$(ONEDNN_VERBOSE=1 "$python" -c '
import ctypes, torch
a = torch.ones(64, 64).bfloat16(); a @ a
torch.nn.functional.conv2d(torch.ones(2, 32, 16, 16), torch.ones(32, 32, 3, 3), padding=1)
lib = ctypes.CDLL("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3")
lib.openblas_get_corename.restype = ctypes.c_char_p
print("openblas-core:" + lib.openblas_get_corename().decode())
' 2>&1) || {
  echo "emulate-avx2: the check of the emulation failed to run ($python):" >&2
  echo "$probe" | tail -20 >&2
  exit 1
}
isa=$(grep -o "isa:[^,]*" <<<"$probe" | head -1 || true)
core=$(grep -o "openblas-core:.*" <<<"$probe" | cut -d: -f2 || true)
if [[ "$isa" != "isa:Intel AVX2" ]] || grep -q 'exec,cpu,matmul.*bf16' <<<"$probe" || [[ "${core,,}" != "${blas_expected,,}" ]]; then
  echo "emulate-avx2: the emulation did not take hold (${isa:-no oneDNN line}; OpenBLAS ${core:-?}):" >&2
  echo "$probe" | head -20 >&2
  exit 1
fi
echo "emulate-avx2: oneDNN ${isa#isa:}, OpenBLAS $core kernels, bf16 by PyTorch's emulated kernels; fixtures in .cache/fixtures-avx2"

exec "$@"
