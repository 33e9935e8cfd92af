#!/usr/bin/env bash
# link.sh: builds ./msrtrain from the GPU bundle on a machine without Go.
# The Go side comes precompiled (lib/libmsrtrain.a, a C archive); this
# compiles the C++ shim against this machine's libtorch and links both with
# g++. libtorch is chosen as `make` chooses it (cgo/find_libtorch.sh):
# $LIBTORCH, then ./third_party/libtorch, then a Python's torch package
# ($PYTHON, default python3), then Debian's libtorch-dev. The ABI flag is
# read from the library and a CUDA libtorch is linked with --no-as-needed.
set -euo pipefail
cd "$(dirname "$0")"
CXX=${CXX:-g++}

mkdir -p build/shim
cgo/find_libtorch.sh build/torch.sh sh
# shellcheck source=/dev/null
. build/torch.sh
echo "libtorch: $TORCH_SOURCE"
echo "  version $TORCH_VERSION, CUDA libraries: $TORCH_CUDA, libs in $TORCH_LIBDIR"

# Each shim file takes tens of seconds against torch/torch.h: compile them at
# once, and, as make does, only those whose object is missing, older than its
# source or a header, or compiled with other flags (build/shim/cxxflags), so a
# second ./link.sh against the same libtorch compiles nothing.
stamp=build/shim/cxxflags
same_flags=false
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$SHIM_CXXFLAGS" ] && same_flags=true
rm -f "$stamp"
pids=() objs=() compiled=0
for src in cgo/shim/*.cpp; do
  obj=build/shim/$(basename "${src%.cpp}").o
  objs+=("$obj")
  if $same_flags && [ -f "$obj" ] && [ -z "$(find "$src" cgo/shim/*.h -newer "$obj")" ]; then
    continue
  fi
  # shellcheck disable=SC2086 # SHIM_CXXFLAGS is a list of flags
  $CXX $SHIM_CXXFLAGS -c "$src" -o "$obj" &
  pids+=($!) compiled=$((compiled + 1))
done
for pid in "${pids[@]}"; do wait "$pid"; done
printf '%s' "$SHIM_CXXFLAGS" >"$stamp"
echo "compiled $compiled of ${#objs[@]} shim files"

# The Go archive calls into the shim, so the shim's objects come after it.
# shellcheck disable=SC2086 # TORCH_LDFLAGS is a list of flags
$CXX -o msrtrain main.c lib/libmsrtrain.a "${objs[@]}" $TORCH_LDFLAGS -lpthread -ldl -lm
echo "wrote $(pwd)/msrtrain; check it with ./msrtrain info"
