#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian 12 machine: system packages (only those missing), npm ci (which
# builds the native addon and the TypeScript), and the bundled real datasets for the demo and tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# libtorch-dev: the LibTorch the addon links; libopenblas0-pthread: Debian's default reference BLAS makes
# matmuls ~25x slower; python3-*: the PyTorch reference (oracle) for fixtures and benchmarks, and the
# datasets bundled in scikit-learn; dataset-fashion-mnist: the real data of the demo and the learning benchmark
# (IDX files under /usr/share/datasets/fashion-mnist); python3-matplotlib: the learning benchmark's plots and the
# colour-map reference; python3-protobuf + python3-crcmod: the independent reader of TensorBoard event files in the
# tests; chromium: the tests open the HTML report in it (headless, through playwright-core);
# libgloo-dev: the headers of Gloo, the collectives library LibTorch's c10d uses on CPU (data-parallel training;
# its symbols are in libtorch_cpu, its headers are not in libtorch-dev); Debian 13's CUDA LibTorch is built
# against libgloo-cuda-0 instead, whose libgloo-cuda-dev conflicts with libgloo-dev;
# libdnnl-dev (optional: installed where the distribution has it): oneDNN's C++ headers, with which the engine runs
# float32 3×3 convolutions as oneDNN's Winograd (native/models/winograd.h; used with oneDNN 2.x, Debian 12's);
# cmake/ninja/g++: the native build; util-linux: flock; e2fsprogs: chattr, with which a test (as root) makes a
# folder nobody may write to.
# "a|b": either satisfies it (Debian 13's CUDA builds, libtorch-cuda-dev and python3-torch-cuda, conflict
# with the CPU ones); when neither is installed, the first is.
PACKAGES=("libtorch-dev|libtorch-cuda-dev" libopenblas0-pthread "python3-torch|python3-torch-cuda" python3-torchvision
          python3-numpy python3-sklearn python3-pil python3-omegaconf dataset-fashion-mnist python3-matplotlib
          python3-protobuf python3-crcmod chromium
          cmake ninja-build g++ make util-linux e2fsprogs clang-format)
# With a CUDA LibTorch: Gloo's CUDA build, and NCCL's header (ProcessGroupNCCL includes it).
if dpkg-query -W -f='${Status}' libtorch-cuda-dev 2>/dev/null | grep -q "install ok installed"; then
  PACKAGES+=("libgloo-cuda-dev|libgloo-dev" libnccl-dev)
else
  PACKAGES+=("libgloo-dev|libgloo-cuda-dev")
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for entry in "${PACKAGES[@]}"; do
  IFS='|' read -r -a alternatives <<< "$entry"
  found=""
  for p in "${alternatives[@]}"; do installed "$p" && found=1 && break; done
  [ -n "$found" ] || missing+=("${alternatives[0]}")
done
OPTIONAL=(libdnnl-dev)
optional=()
for p in "${OPTIONAL[@]}"; do installed "$p" || optional+=("$p"); done
if [ "${#missing[@]}" -gt 0 ] || [ "${#optional[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # An optional package the distribution does not have is left out, with a line saying so.
  for p in "${optional[@]}"; do
    if [ -n "$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" {print $2}')" ]; then
      missing+=("$p")
    else
      echo "setup: $p is not available here; the addon builds without what it adds"
    fi
  done
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: system packages present"
fi

# npm ci runs the install script (native addon via cmake-js, offline) and prepare (tsc).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ ! -f build/Release/torch_ssl.node ] || [ ! -f dist/index.js ]; then
  npm ci --no-audit --no-fund
else
  echo "setup: node_modules, addon and dist up to date (npm ci skipped)"
fi

# Real data bundled with scikit-learn (digits, two photos), exported as .npy for the demo and tests.
/usr/bin/python3 scripts/export-datasets.py .cache/datasets
echo "setup: done"
