#!/usr/bin/env bash
# find_libtorch.sh OUT [mk|sh]: chooses the libtorch to build against and
# writes variables describing it, as make assignments (the Makefile) or shell
# ones (the GPU bundle's link.sh). Order: $LIBTORCH (a libtorch
# distribution's root), then ./third_party/libtorch, then a Python that
# imports torch and ships its libraries, then Debian's libtorch-dev.
set -euo pipefail
out=$1 format=${2:-mk}
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

source_desc="" inc="" lib="" version="" abi=""

from_root() { # a libtorch zip layout: include/, lib/, build-version
  inc="$1/include -I$1/include/torch/csrc/api/include"
  lib="$1/lib"
  [ -f "$1/build-version" ] && version=$(cut -d+ -f1 <"$1/build-version")
  return 0
}

if [ -n "${LIBTORCH:-}" ]; then
  [ -f "$LIBTORCH/lib/libtorch_cpu.so" ] || { echo "LIBTORCH=$LIBTORCH has no lib/libtorch_cpu.so: point it at the root of an unpacked libtorch distribution" >&2; exit 1; }
  from_root "$LIBTORCH"; source_desc="LIBTORCH=$LIBTORCH (set in the environment)"
elif [ -f "$root/third_party/libtorch/lib/libtorch_cpu.so" ]; then
  from_root "$root/third_party/libtorch"; source_desc="third_party/libtorch (unpacked in the repository)"
elif tdir=$("$python" -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null) && [ -f "$tdir/lib/libtorch_cpu.so" ]; then
  inc="$tdir/include -I$tdir/include/torch/csrc/api/include"; lib="$tdir/lib"
  version=$("$python" -c 'import torch; print(torch.__version__.split("+")[0])')
  abi=$("$python" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
  source_desc="$python's torch package at $tdir"
else
  multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  for d in /usr/lib/$multiarch /usr/lib; do
    if [ -f "$d/libtorch_cpu.so" ]; then lib=$d; break; fi
  done
  if [ -z "$lib" ] || [ ! -f /usr/include/torch/csrc/api/include/torch/torch.h ]; then
    echo "no libtorch found: set LIBTORCH=<root of a libtorch distribution>, install torch for $python, or run 'make setup' (Debian's libtorch-dev)" >&2
    exit 1
  fi
  inc="/usr/include -I/usr/include/torch/csrc/api/include"
  version=$(dpkg-query -W -f='${Version}' libtorch-dev 2>/dev/null | sed 's/[+~-].*//') || true
  source_desc="Debian's libtorch-dev in $lib (no LIBTORCH, no third_party/libtorch, no torch in $python)"
fi

if [ -z "$abi" ]; then
  # The C++11 string ABI shows in the mangled names the library exports.
  # (no grep -q: it would close the pipe early and pipefail would read that as no match)
  if [ "$(nm -D --defined-only "$lib/libc10.so" 2>/dev/null | grep -c cxx11)" -gt 0 ]; then abi=1; else abi=0; fi
fi

cuda_libs="" cuda="no"
if [ -f "$lib/libtorch_cuda.so" ]; then
  # Nothing in our code references libtorch_cuda directly, so without
  # --no-as-needed the linker drops it and CUDA silently vanishes.
  cuda_libs="-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed"; cuda="yes"
fi

# c10d backends for data-parallel training. Gloo needs libtorch to export
# ProcessGroupGloo and gloo's headers (Debian: libgloo-dev; not every libtorch
# distribution ships them). NCCL needs libtorch_cuda to export
# ProcessGroupNCCL, and nccl.h plus the CUDA headers (CUDA_HOME).
exports() { [ "$(nm -DC --defined-only "$1" 2>/dev/null | grep -c "$2")" -gt 0 ]; }
find_header() { # find_header HEADER DIR... prints the first DIR holding HEADER
  local h=$1; shift
  for d in "$@"; do [ -f "$d/$h" ] && { echo "$d"; return 0; }; done
  return 1
}
inc_dirs=$(echo "$inc" | sed 's/-I/ /g')
dist_flags="" dist="none"
if exports "$lib/libtorch_cpu.so" 'c10d::ProcessGroupGloo::ProcessGroupGloo' && gloo_inc=$(find_header gloo/algorithm.h $inc_dirs /usr/include /usr/local/include); then
  dist_flags="-DUSE_C10D_GLOO -DMSR_WITH_GLOO -I$gloo_inc"; dist="gloo"
fi
cuda_home=${CUDA_HOME:-/usr/local/cuda}
if [ "$cuda" = yes ] && exports "$lib/libtorch_cuda.so" 'c10d::ProcessGroupNCCL::ProcessGroupNCCL' &&
  nccl_inc=$(find_header nccl.h $inc_dirs "$cuda_home/include" /usr/include) &&
  cuda_inc=$(find_header cuda_runtime_api.h "$cuda_home/include" /usr/include); then
  dist_flags="$dist_flags -DUSE_C10D_NCCL -DMSR_WITH_NCCL -I$nccl_inc -I$cuda_inc"; dist="${dist/none/} nccl"
fi

# SHIM_CXXFLAGS is everything a shim source file is compiled with; the
# distribution's version goes in as the token msrtrain info reports.
vars=(
  TORCH_SOURCE "$source_desc"
  TORCH_VERSION "${version:-unknown}"
  TORCH_CUDA "$cuda"
  TORCH_LIBDIR "$lib"
  TORCH_DIST "${dist# }"
  SHIM_CXXFLAGS "-std=c++17 -O2 -fPIC -Wall -Wno-unused-parameter -I$inc -D_GLIBCXX_USE_CXX11_ABI=$abi -DMSR_TORCH_VERSION=${version:-unknown} $dist_flags"
  TORCH_LDFLAGS "-L$lib -Wl,-rpath,$lib $cuda_libs -ltorch -ltorch_cpu -lc10"
)
{
  for ((i = 0; i < ${#vars[@]}; i += 2)); do
    case $format in
      mk) printf '%s := %s\n' "${vars[i]}" "${vars[i + 1]}" ;;
      sh) printf '%s=%q\n' "${vars[i]}" "${vars[i + 1]}" ;;
      *) echo "find_libtorch.sh: format $format: want mk or sh" >&2; exit 1 ;;
    esac
  done
} >"$out"
