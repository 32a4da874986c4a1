#!/usr/bin/env bash
# Runs inside the Debian 13 CUDA root (scripts/debian13-lane.sh cuda). Debian's `nvidia-cudnn` package is
# an installer that downloads cuDNN from developer.download.nvidia.com when it is configured; these machines
# reach only Debian's and npm's registries, so it cannot be installed here. This replaces it with:
#   1. a placeholder package `nvidia-cudnn` (version 9.0.0.312~cuda12+torchssl.stub, which satisfies
#      libtorch-cuda-2.6's dependency) that contains nothing, and
#   2. after the CUDA packages are in, a stub libcudnn.so.9 that exports, under cuDNN's symbol version, every
#      cudnn* function the installed libraries import (libtorch_cuda is linked with BIND_NOW, so each must
#      exist); each returns CUDNN_STATUS_NOT_INITIALIZED (version queries return 0).
# It exists so that the CUDA variant of the addon can be linked and loaded on a machine without a GPU, where
# no cuDNN function is ever called. It is never a substitute for cuDNN on a machine with a GPU.
set -euo pipefail
phase=$1
libdir=/usr/lib/x86_64-linux-gnu
if [ "$phase" = placeholder ]; then
  d=$(mktemp -d)
  mkdir -p "$d/DEBIAN" "$d/usr/share/doc/nvidia-cudnn"
  cat > "$d/DEBIAN/control" <<CONTROL
Package: nvidia-cudnn
Version: 9.0.0.312~cuda12+torchssl.stub
Architecture: amd64
Maintainer: torch-ssl <noreply@localhost>
Description: placeholder for NVIDIA cuDNN in torch-ssl's Debian 13 CUDA build lane (no cuDNN inside)
CONTROL
  echo "Placeholder installed by torch-ssl's scripts/debian13/cudnn-stub.sh; see that script." > "$d/usr/share/doc/nvidia-cudnn/README"
  dpkg-deb --root-owner-group --build "$d" /tmp/nvidia-cudnn-placeholder.deb >/dev/null
  dpkg -i /tmp/nvidia-cudnn-placeholder.deb >/dev/null
  apt-mark hold nvidia-cudnn >/dev/null
  rm -rf "$d" /tmp/nvidia-cudnn-placeholder.deb
  exit 0
fi
# phase = stub
syms=$(for l in "$libdir"/*.so*; do
  [ -f "$l" ] && [ ! -L "$l" ] && readelf -d "$l" 2>/dev/null | grep -q 'libcudnn\.so\.9' && nm -D --undefined-only "$l" | awk '{print $2}' | grep '@libcudnn\.so\.9' | sed 's/@.*//' || true
done | sort -u)
[ -n "$syms" ] || { echo "cudnn-stub: no library imports from libcudnn.so.9" >&2; exit 1; }
src=$(mktemp --suffix=.c); map=$(mktemp)
{
  echo '/* torch-ssl lane stub: see scripts/debian13/cudnn-stub.sh. Every call fails: CUDNN_STATUS_NOT_INITIALIZED = 1001. */'
  for s in $syms; do
    case "$s" in
      cudnnGetVersion|cudnnGetCudartVersion|cudnnGetMaxDeviceVersion) echo "unsigned long $s(void) { return 0; }";;
      cudnnGetErrorString) echo "const char* $s(int s) { (void)s; return \"cuDNN is a stub in torch-ssl's Debian 13 build lane\"; }";;
      *) echo "int $s(void) { return 1001; }";;
    esac
  done
} > "$src"
{ echo 'libcudnn.so.9 { global:'; for s in $syms; do echo "  $s;"; done; echo 'local: *; };'; } > "$map"
gcc -shared -fPIC -O1 -fno-builtin -Wl,-soname,libcudnn.so.9 -Wl,--version-script="$map" -o "$libdir/libcudnn.so.9" "$src"
ln -sf libcudnn.so.9 "$libdir/libcudnn.so"
rm -f "$src" "$map"
echo "cudnn-stub: $libdir/libcudnn.so.9 with $(echo "$syms" | wc -l) stub functions"
