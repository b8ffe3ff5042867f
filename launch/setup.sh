#!/usr/bin/env bash
# Installs what nsa-train needs to build and test, on Debian/Ubuntu, and does nothing when it is all
# there (the GPU machine has everything preinstalled and no package registry). Idempotent.
#   needs: a C++20 compiler, cmake, make, yaml-cpp, HDF5, OpenMPI, GoogleTest (CUDA is optional: the
#   CUDA backend is built whenever nvcc is found).
set -euo pipefail

missing=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_file() { for f in "$@"; do [ -e "$f" ] && return 0; done; return 1; }

have_cmd cmake || missing+=(cmake)
have_cmd g++ || missing+=(g++)
have_cmd make || have_cmd ninja || missing+=(make)
have_file /usr/include/yaml-cpp/yaml.h /usr/local/include/yaml-cpp/yaml.h || missing+=(libyaml-cpp-dev)
have_file /usr/include/hdf5/serial/hdf5.h /usr/include/hdf5.h /usr/local/include/hdf5.h || missing+=(libhdf5-dev)
have_file /usr/include/x86_64-linux-gnu/mpi.h /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h /usr/include/mpi.h \
  /usr/local/include/mpi.h || missing+=(libopenmpi-dev)
have_cmd mpirun || missing+=(openmpi-bin)
have_file /usr/include/gtest/gtest.h /usr/src/googletest/CMakeLists.txt /usr/local/include/gtest/gtest.h ||
  missing+=(libgtest-dev)

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all dependencies present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
if ! have_cmd apt-get; then
  echo "setup: error: missing ${missing[*]} and no apt-get to install them; install them and rerun" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  have_cmd sudo || { echo "setup: error: run as root (or install sudo) to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
