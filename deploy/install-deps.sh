#!/usr/bin/env bash
# Installs the Debian 12 packages stylesweep builds and runs with, skipping
# those already present. Run as root (or with sudo available).
# Usage: install-deps.sh [bench]
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev libssl-dev
  libtorch-dev libopenblas0-openmp
  libyaml-cpp-dev libspdlog-dev libsqlite3-dev libcli11-dev nlohmann-json3-dev libstb-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev
  # Tests only: headless Chromium opens the HTML report and the dashboard,
  # promtool checks /metrics, openssl makes a throwaway certificate for the
  # HTTPS test, clang and its libFuzzer runtime build the fuzz targets
  # (llvm's symbolizer names the lines of a crash).
  chromium prometheus openssl clang libclang-rt-dev llvm
)
# `make bench` also runs the same loop in PyTorch beside the engine.
if [[ ${1:-} == bench ]]; then
  packages+=(python3-torch python3-numpy python3-pil)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "Installing: ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then
    sudo="sudo"
  else
    echo "error: these packages are missing and this is not root: ${missing[*]}" >&2
    echo "install them with: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
