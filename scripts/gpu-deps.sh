#!/usr/bin/env bash
# Downloads (never installs) the Debian 12 packages that the FULL project needs on the GPU
# machine, which lacks them (Ubuntu 24.04 with CUDA, no internet): nlohmann-json, CLI11, zstd,
# zlib, OpenCC, yaml-cpp, GoogleTest, pkgconf, OpenBLAS (OpenMP build) and Open MPI (its runtime
# and the libraries it loads; for the data-parallel stage with NCCL). They land in .deps/
# (git-ignored through .git/info/exclude); a device call carries them (`carry: [".deps"]`, about
# 25 MB of the 64 MiB limit) and scripts/gpu-check.sh unpacks them under /tmp/mindllm-deps (Open
# MPI relocated there with OPAL_PREFIX).
#
#   bash scripts/gpu-deps.sh        # on the development machine (Debian 12, apt configured)
set -euo pipefail
cd "$(dirname "$0")/.."

# Headers and link-time libraries with the runtime libraries they point at. Not the data
# packages (OpenCC's dictionaries) nor googletest's sources: building and training need neither.
PACKAGES=(
  nlohmann-json3-dev libcli11-dev
  libzstd-dev libzstd1 zlib1g-dev zlib1g
  libopencc-dev libopencc1.1 libmarisa0
  libyaml-cpp-dev libyaml-cpp0.7
  libgtest-dev
  pkgconf pkgconf-bin libpkgconf3
  libopenblas0-openmp libopenblas-openmp-dev libgfortran5
  openmpi-bin openmpi-common libopenmpi3 libopenmpi-dev libpmix2 libhwloc15 libpciaccess0
  libevent-2.1-7 libevent-core-2.1-7 libevent-pthreads-2.1-7 libfabric1 libucx0 libnuma1
  libibverbs1 librdmacm1 libnl-3-200 libnl-route-3-200 libpsm2-2 libpsm-infinipath1 libmunge2 libltdl7
  libudev1
)

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.deps/' "$exclude" 2>/dev/null || echo '/.deps/' >>"$exclude"

mkdir -p .deps
rm -f .deps/*.deb
(cd .deps && apt-get download "${PACKAGES[@]}" >/dev/null)
# The cuDNN frontend's headers (header-only C++; the GPU machine has cuDNN itself but not these),
# from its PyPI wheel, for --attention cudnn (src/kernels/cuda/cudnn_attention.h).
rm -rf .deps/cudnn-frontend && mkdir -p .deps/cudnn-frontend
python3 -m pip download -q --no-deps --disable-pip-version-check nvidia-cudnn-frontend -d .deps/cudnn-frontend
(cd .deps/cudnn-frontend && python3 -m zipfile -e nvidia_cudnn_frontend-*.whl wheel && mv wheel/include . &&
  rm -rf wheel ./*.whl)
echo "$(ls .deps/*.deb | wc -l) packages in .deps/, $(du -ch .deps/*.deb | tail -1 | cut -f1) in all;" \
  "cuDNN frontend headers: $(du -sh .deps/cudnn-frontend | cut -f1)"
