#!/usr/bin/env bash
# The Debian 13 lane: LibTorch / PyTorch 2.6, GCC 14, Node 20, in a Debian 13 (trixie) root made with
# mmdebstrap and cached, entered with chroot (run as root). Each run copies this working tree (tracked and
# untracked-but-not-ignored files: what a clone plus your edits holds) into a fresh folder of the root and
# runs the README's commands there.
#
#   bash scripts/debian13-lane.sh [cpu]   LibTorch 2.6 (CPU): `bash scripts/setup.sh`, then `npm test`
#                                         with Debian 13's PyTorch 2.6 as the oracle
#   bash scripts/debian13-lane.sh cuda    LibTorch 2.6 CUDA build (libtorch-cuda-dev, nvidia-cuda-toolkit 12.4,
#                                         python3-torch-cuda): set-up builds the CUDA variant of the addon;
#                                         then `npm test` runs the CPU suite with it (no GPU here), including
#                                         test/cuda-build.test.ts
#   bash scripts/debian13-lane.sh shell [cpu|cuda]   a shell in the root's copy, for poking around
#
# Environment: TSSL_LANE_CACHE (default /var/cache/torch-ssl) holds the roots (~2.5 GB cpu, ~12 GB cuda);
# TSSL_DEBIAN_MIRROR (default http://deb.debian.org/debian); TSSL_LANE_ARGS: extra arguments to `npm test`;
# TSSL_LANE_REPORT: a path here to copy vitest's JSON report to (.ci/run counts the tests from it).
# A root is rebuilt when its package list below changes; `rm -rf "$TSSL_LANE_CACHE"/trixie-*` forces it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

mode=${1:-cpu}
shell=""
if [ "$mode" = shell ]; then shell=1; mode=${2:-cpu}; fi
case "$mode" in cpu|cuda) ;; *) echo "debian13-lane: unknown lane '$mode' (expected cpu, cuda or shell [cpu|cuda])" >&2; exit 2;; esac
[ "$(id -u)" -eq 0 ] || { echo "debian13-lane: run as root (mmdebstrap and chroot need it)" >&2; exit 2; }

cache=${TSSL_LANE_CACHE:-/var/cache/torch-ssl}
mirror=${TSSL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
root="$cache/trixie-$mode"

# What the root is made with: Node and npm, then setup.sh's own packages (installed here once so that the
# cached root makes set-up fast; setup.sh would install whatever is missing anyway).
common=(nodejs npm ca-certificates libopenblas0-pthread python3-numpy python3-sklearn python3-pil python3-omegaconf dataset-fashion-mnist python3-matplotlib
        python3-protobuf python3-crcmod chromium cmake ninja-build g++ make util-linux e2fsprogs)
if [ "$mode" = cpu ]; then
  packages=("${common[@]}" libtorch-dev python3-torch python3-torchvision libgloo-dev)
  later=()
  components="main"
else
  # Installed after the cuDNN placeholder (below); python3-torchvision needs python3-torch | python3-torch-cuda.
  packages=("${common[@]}")
  later=(libtorch-cuda-dev python3-torch-cuda python3-torchvision nvidia-cuda-toolkit libnccl-dev libgloo-cuda-dev)
  components="main contrib non-free non-free-firmware"
fi
want="$components :: ${packages[*]} :: ${later[*]}"
[ "$mode" = cpu ] || want="$want :: $(sha256sum scripts/debian13/cudnn-stub.sh | cut -c1-16)"

command -v mmdebstrap >/dev/null || {
  echo "debian13-lane: installing mmdebstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap
}

# What the chroot needs: DNS, the host's CA bundle for npm (the registry is reached through it), /proc, and
# its own /dev/pts and /dev/shm (the root has its own device nodes; the host's /dev is never bound, so
# nothing mounted here can reach the host's mounts).
mounted=()
cleanup() { for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done; mounted=(); }
trap cleanup EXIT
enter() {
  local r=$1
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/host-ca-bundle.crt"
  mount -t proc proc "$r/proc" && mounted+=("$r/proc")
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$r/dev/pts" && mounted+=("$r/dev/pts")
  mount -t tmpfs tmpfs "$r/dev/shm" && mounted+=("$r/dev/shm")
}

t0=$(date +%s)
if [ ! -f "$root/.tssl-packages" ] || [ "$(cat "$root/.tssl-packages")" != "$want" ]; then
  echo "debian13-lane: making the Debian 13 root $root (a few minutes; cached afterwards)"
  mkdir -p "$cache"
  rm -rf "$root.tmp"
  include=$(IFS=,; echo "${packages[*]}")
  mmdebstrap --variant=apt --components="$components" --include="$include" trixie "$root.tmp" "$mirror"
  if [ "${#later[@]}" -gt 0 ]; then
    # Debian's nvidia-cudnn downloads cuDNN from NVIDIA, which is unreachable here: a placeholder package and
    # a stub library stand in (scripts/debian13/cudnn-stub.sh says exactly what and why).
    enter "$root.tmp"
    cp scripts/debian13/cudnn-stub.sh "$root.tmp/usr/local/sbin/tssl-cudnn-stub"
    chroot "$root.tmp" tssl-cudnn-stub placeholder
    chroot "$root.tmp" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    chroot "$root.tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${later[@]}"
    chroot "$root.tmp" tssl-cudnn-stub stub
    chroot "$root.tmp" apt-get clean
    cleanup
  fi
  echo "$want" > "$root.tmp/.tssl-packages"
  rm -rf "$root"
  mv "$root.tmp" "$root"
  echo "debian13-lane: root ready in $(( $(date +%s) - t0 )) s"
else
  echo "debian13-lane: using the cached root $root"
fi

# The working tree, fresh: what a clone holds plus uncommitted edits, never node_modules/build/caches. Test
# folders an interrupted earlier run left in the cached root's /tmp go too (a ResNet checkpoint is ~90 MB).
chattr -R -i "$root"/tmp/tssl-* 2>/dev/null || true  # a test's immutable folder, if a run stopped mid-test
rm -rf "$root"/tmp/tssl-*
work="$root/work/torch-ssl"
rm -rf "$work"
mkdir -p "$work"
git -C "$repo" ls-files -z --cached --others --exclude-standard | (cd "$repo" && tar -c --null --ignore-failed-read -T - 2>/dev/null) | tar -x -C "$work"
enter "$root"

run_in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="${CI:-}" \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca-bundle.crt npm_config_cafile=/etc/ssl/certs/host-ca-bundle.crt \
    TSSL_EXPECT_CUDA_BUILD="$([ "$mode" = cuda ] && echo 1 || echo 0)" \
    bash -c "cd /work/torch-ssl && $1"
}

echo "debian13-lane ($mode): $(run_in_root 'echo "node $(node --version), npm $(npm --version), $(g++ --version | head -1), python torch $(/usr/bin/python3 -c "import torch; print(torch.__version__)")"')"
if [ -n "$shell" ]; then
  run_in_root 'exec bash -i'
  exit 0
fi

t1=$(date +%s)
run_in_root 'bash scripts/setup.sh'
t2=$(date +%s)
echo "debian13-lane ($mode): set-up (packages, npm ci with the native build, datasets) took $((t2 - t1)) s"
echo "debian13-lane ($mode): $(run_in_root 'node -e "const b=require(\"./build/Release/torch_ssl.node\").buildInfo(); console.log(\"addon built against LibTorch \" + b.torchVersion + \", cudaBuild \" + b.cudaBuild + \", cudaAvailable \" + b.cudaAvailable)"')"
report_args=""
[ -n "${TSSL_LANE_REPORT:-}" ] && report_args="--reporter=default --reporter=json --outputFile=.cache/lane-report.json"
set +e
run_in_root "npm test -- $report_args ${TSSL_LANE_ARGS:-}"
rc=$?
set -e
if [ -n "${TSSL_LANE_REPORT:-}" ] && [ -f "$work/.cache/lane-report.json" ]; then cp "$work/.cache/lane-report.json" "$TSSL_LANE_REPORT"; fi
echo "debian13-lane ($mode): npm test exited $rc after $(( $(date +%s) - t2 )) s (whole lane $(( $(date +%s) - t0 )) s)"
exit $rc
