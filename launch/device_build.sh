# Sourced by the device_*.sh scripts (run from the repository root on the GPU machine): sets OUT (outputs,
# default ./out) and BUILD (the sm_90a build folder, NSA_BUILD_DIR or build-device), and defines
#   device_build LOG TARGET...
# which configures BUILD once (Release, CUDA, sm_90a) and builds the targets, logging to $OUT/LOG; on a build
# error it prints the errors and exits 1.
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
BUILD=${NSA_BUILD_DIR:-build-device}

device_build() {
  local log=$1
  shift
  local generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  [ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DNSA_CUDA=ON \
    -DNSA_CUDA_ARCHS=90a-real >"$OUT/configure.log" 2>&1
  cmake --build "$BUILD" -j "$(nproc)" --target "$@" >"$OUT/$log" 2>&1 ||
    { grep -E "error" -A5 "$OUT/$log" | head -40; tail -3 "$OUT/$log"; exit 1; }
}
