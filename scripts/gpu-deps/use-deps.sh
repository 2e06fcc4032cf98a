# Source from the repository root (bash), in every shell that configures, builds or runs handoff:
#
#   source scripts/gpu-deps/use-deps.sh
#   cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release \
#     -DCMAKE_PREFIX_PATH="$HANDOFF_DEPS_PREFIX;$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')" \
#     -DPKG_CONFIG_EXECUTABLE="$HANDOFF_DEPS_PREFIX/bin/pkg-config" \
#     -DBOOST_ROOT="$HANDOFF_DEPS_PREFIX" -DBoost_INCLUDE_DIR="$HANDOFF_DEPS_PREFIX/include" -DBoost_NO_BOOST_CMAKE=ON \
#     -DCMAKE_CXX_FLAGS="$HANDOFF_DEPS_CXX_FLAGS"
#   cmake --build build-cuda -j"$(nproc)" --target handoff bench_cuda
#
# (all on one line: the same, without the backslashes). GTest comes from the bundle's GTestConfig.cmake through
# CMAKE_PREFIX_PATH (GTEST_ROOT is exported too, for FindGTest's fallback). The same command is in $HANDOFF_DEPS_CMAKE_LINE
# (echo "$HANDOFF_DEPS_CMAKE_LINE"; or run it with: eval "$HANDOFF_DEPS_CMAKE_LINE").
#
# What it does: unpacks scripts/gpu-deps/deps.tar.xz (non-torch build dependencies taken from Debian 12 packages:
# nlohmann-json, CLI11, cpp-httplib + OpenSSL/zlib/brotli headers, RE2, SentencePiece, GoogleTest/GoogleMock,
# Boost 1.74 headers, gloo headers, pkgconf) into $HANDOFF_DEPS_DIR (default /tmp/handoff-deps) unless the same
# archive is already there, and exports the variables CMake, the linker and the programs need (PATH, PKG_CONFIG,
# PKG_CONFIG_PATH, CMAKE_PREFIX_PATH, GTEST_ROOT, BOOST_ROOT, LD_LIBRARY_PATH, HANDOFF_DEPS_*).
# Settings: HANDOFF_DEPS_DIR (where to unpack), HANDOFF_DEPS_CPATH=1 (also put the bundle's include dir on
# CPLUS_INCLUDE_PATH; off by default since CMake passes every include dir itself, and CPLUS_INCLUDE_PATH would
# be searched before torch's -isystem dirs).

_hd_src="${BASH_SOURCE[0]:-$0}"
_hd_here=$(cd "$(dirname "$_hd_src")" && pwd)
_hd_archive="$_hd_here/deps.tar.xz"
HANDOFF_DEPS_DIR="${HANDOFF_DEPS_DIR:-/tmp/handoff-deps}"

_hd_setup() {
  if [ ! -f "$_hd_archive" ]; then
    echo "use-deps.sh: $_hd_archive not found" >&2; return 1
  fi
  local sum; sum=$(sha256sum "$_hd_archive" | cut -d' ' -f1)
  if [ "$(cat "$HANDOFF_DEPS_DIR/.archive-sha256" 2>/dev/null)" != "$sum" ] || [ ! -d "$HANDOFF_DEPS_DIR/prefix" ]; then
    echo "use-deps.sh: unpacking deps.tar.xz into $HANDOFF_DEPS_DIR" >&2
    rm -rf "$HANDOFF_DEPS_DIR/prefix" "$HANDOFF_DEPS_DIR/fallback-active"
    mkdir -p "$HANDOFF_DEPS_DIR" && tar -C "$HANDOFF_DEPS_DIR" -xJf "$_hd_archive" || return 1
    echo "$sum" > "$HANDOFF_DEPS_DIR/.archive-sha256"
  fi
  local P="$HANDOFF_DEPS_DIR/prefix"

  # Runtime libraries of libcpp-httplib (OpenSSL 3, zlib, brotli): the system's where present; the bundled
  # Debian 12 copies only for those missing (linked into fallback-active, which goes on the library paths).
  local fa="$HANDOFF_DEPS_DIR/fallback-active" group lib missing
  rm -rf "$fa"; mkdir -p "$fa"
  _hd_have() {
    { /sbin/ldconfig -p 2>/dev/null || ldconfig -p 2>/dev/null; } | grep -qF " $1 (libc6,x86-64)" && return 0
    local d; for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64; do
      [ -e "$d/$1" ] && return 0; done
    return 1
  }
  for group in "libssl.so.3 libcrypto.so.3" "libz.so.1" "libbrotlicommon.so.1 libbrotlidec.so.1 libbrotlienc.so.1"; do
    missing=0
    for lib in $group; do _hd_have "$lib" || missing=1; done
    if [ $missing = 1 ]; then   # a set is taken whole (libssl and libcrypto must match, so must the brotli trio)
      for lib in $group; do ln -s "$P/lib/fallback/$lib" "$fa/$lib"; done
      echo "use-deps.sh: system lacks part of [$group]: using the bundled copies" >&2
    fi
  done
  unset -f _hd_have
  local libdirs="$P/lib"
  [ -n "$(ls -A "$fa")" ] && libdirs="$libdirs:$fa"

  _hd_strip() { printf '%s' "$1" | tr ':' '\n' | { grep -vxF -e "$P/bin" -e "$P" -e "$P/lib" -e "$P/lib/pkgconfig" -e "$fa" -e "$P/include" || true; } | paste -sd: -; }
  CMAKE_PREFIX_PATH=$(_hd_strip "${CMAKE_PREFIX_PATH:-}"); PATH=$(_hd_strip "$PATH")
  PKG_CONFIG_PATH=$(_hd_strip "${PKG_CONFIG_PATH:-}"); LD_LIBRARY_PATH=$(_hd_strip "${LD_LIBRARY_PATH:-}")
  CPLUS_INCLUDE_PATH=$(_hd_strip "${CPLUS_INCLUDE_PATH:-}")
  [ -n "$CPLUS_INCLUDE_PATH" ] || unset CPLUS_INCLUDE_PATH
  unset -f _hd_strip
  export HANDOFF_DEPS_PREFIX="$P"
  export CMAKE_PREFIX_PATH="$P${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export PATH="$P/bin:$PATH"
  export PKG_CONFIG="$P/bin/pkg-config"             # read by CMake's FindPkgConfig
  export PKG_CONFIG_EXECUTABLE="$P/bin/pkg-config"  # for -DPKG_CONFIG_EXECUTABLE=
  export PKG_CONFIG_PATH="$P/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export GTEST_ROOT="$P"
  export BOOST_ROOT="$P" BOOST_INCLUDEDIR="$P/include" Boost_INCLUDE_DIR="$P/include"
  # LD_LIBRARY_PATH, not LIBRARY_PATH: the latter would make CMake take the bundle's lib dir for an implicit
  # link directory and leave it out of the binaries' RUNPATH. GNU ld also reads LD_LIBRARY_PATH to find the
  # libraries that libcpp-httplib needs (fallback-active).
  export LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if [ "${HANDOFF_DEPS_CPATH:-0}" = 1 ]; then
    export CPLUS_INCLUDE_PATH="$P/include${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}"
  fi

  # gloo headers (src/dist/world.cpp includes torch's ProcessGroupGloo.hpp): the pip torch's own copy when it
  # ships one (it matches the libtorch binary); else Debian's, searched after every other include dir.
  local torch_dir
  torch_dir=$(python3 -c 'import importlib.util,os;s=importlib.util.find_spec("torch");print(os.path.dirname(s.origin) if s else "")' 2>/dev/null)
  export HANDOFF_DEPS_CXX_FLAGS=""
  if [ -n "$torch_dir" ] && [ -f "$torch_dir/include/gloo/context.h" ]; then
    :
  else
    HANDOFF_DEPS_CXX_FLAGS="-idirafter $P/opt/gloo/include"
    echo "use-deps.sh: torch ${torch_dir:+at $torch_dir }has no include/gloo: using Debian's gloo headers (HANDOFF_DEPS_CXX_FLAGS; a 2022 gloo, which a newer torch's ProcessGroupGloo.hpp may not compile against)" >&2
  fi
  export HANDOFF_TORCH_CMAKE_PREFIX="${torch_dir:+$torch_dir/share/cmake}"

  export HANDOFF_DEPS_CMAKE_LINE="cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release \
-DCMAKE_PREFIX_PATH=\"$P;$HANDOFF_TORCH_CMAKE_PREFIX\" -DPKG_CONFIG_EXECUTABLE=\"$P/bin/pkg-config\" \
-DBOOST_ROOT=\"$P\" -DBoost_INCLUDE_DIR=\"$P/include\" -DBoost_NO_BOOST_CMAKE=ON \
-DCMAKE_CXX_FLAGS=\"$HANDOFF_DEPS_CXX_FLAGS\""
  echo "use-deps.sh: HANDOFF_DEPS_PREFIX=$P" >&2
}
_hd_setup
unset -f _hd_setup
unset _hd_src _hd_here _hd_archive
