#!/usr/bin/env bash
# Builds scripts/gpu-deps/deps.tar.xz from this Debian 12 machine's dev packages: a relocatable prefix with the
# non-torch build dependencies of handoff (see use-deps.sh for how it is used on a machine without them).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/handoff-bundle.XXXXXX)
P=$WORK/prefix
A=/usr/lib/x86_64-linux-gnu
mkdir -p "$P"/{include,lib/pkgconfig,lib/cmake,lib/fallback,share/cmake,bin,libexec/pkgconf,opt/gloo/include}

# --- headers ---
cp -a /usr/include/{nlohmann,CLI,re2,gtest,gmock,boost,brotli,openssl} "$P/include/"
cp -a /usr/include/{httplib.h,sentencepiece_processor.h,sentencepiece_trainer.h,zlib.h,zconf.h} "$P/include/"
cp -a /usr/include/x86_64-linux-gnu/openssl/. "$P/include/openssl/"   # configuration.h, opensslconf.h
# gloo: kept apart, used only when the pip torch does not ship its own (use-deps.sh decides)
cp -a /usr/include/gloo "$P/opt/gloo/include/"

# --- libraries (none of these sonames exists on a stock Ubuntu 24.04) ---
cp -a $A/libcpp-httplib.so* $A/libre2.so $A/libre2.so.9* $A/libsentencepiece.so* $A/libsentencepiece_train.so* "$P/lib/"
cp -a $A/libgtest.a $A/libgtest_main.a $A/libgmock.a $A/libgmock_main.a "$P/lib/"
# runtime deps of libcpp-httplib that a bare Ubuntu might lack; use-deps.sh links only the missing ones
cp -a $A/libssl.so.3 $A/libcrypto.so.3 $A/libz.so.1 $A/libz.so.1.2.13 $A/libbrotli{common,dec,enc}.so.1* "$P/lib/fallback/"

# --- pkg-config files, relocatable ---
pc() {  # name, body
  printf 'prefix=${pcfiledir}/../..\nincludedir=${prefix}/include\nlibdir=${prefix}/lib\n\n%s\n' "$2" > "$P/lib/pkgconfig/$1.pc"
}
pc cpp-httplib "Name: cpp-httplib
Description: A C++ HTTP/HTTPS server and client library (Debian 12 build 0.11.4, bundled)
Version: 0.11.4
Libs: -L\${libdir} -lcpp-httplib
Libs.private: -pthread
Cflags: -I\${includedir} -DCPPHTTPLIB_OPENSSL_SUPPORT -DCPPHTTPLIB_ZLIB_SUPPORT -DCPPHTTPLIB_BROTLI_SUPPORT"
pc re2 "Name: re2
Description: RE2 is a fast, safe, thread-friendly regular expression engine.
Version: 0.0.0
Cflags: -pthread -I\${includedir}
Libs: -pthread -L\${libdir} -lre2"
pc sentencepiece "Name: sentencepiece
Description: Unsupervised text tokenizer and detokenizer for Neural Network-based text generation.
Version: 0.1.97
Libs: -L\${libdir} -lsentencepiece -lsentencepiece_train
Cflags: -I\${includedir}"
for g in gtest gmock; do
  pc $g "Name: $g
Description: GoogleTest ($g)
Version: 1.12.1
Libs: -L\${libdir} -l$g -lpthread
Cflags: -I\${includedir} -DGTEST_HAS_PTHREAD=1"
  pc ${g}_main "Name: ${g}_main
Description: GoogleTest (${g} with main())
Version: 1.12.1
Requires: $g = 1.12.1
Libs: -L\${libdir} -l${g}_main -lpthread
Cflags: -I\${includedir} -DGTEST_HAS_PTHREAD=1"
done
pc nlohmann_json "Name: nlohmann_json
Description: JSON for Modern C++
Version: 3.11.2
Cflags: -I\${includedir}"
pc CLI11 "Name: CLI11
Description: C++ command line parser
Version: 2.1.2
Cflags: -I\${includedir}"

# --- CMake package configs ---
cp -a /usr/share/cmake/nlohmann_json /usr/share/cmake/CLI11 "$P/share/cmake/"   # relocatable as shipped
cp -a $A/cmake/GTest "$P/lib/cmake/"
# Debian's GTest config lives in lib/x86_64-linux-gnu/cmake/GTest; here it is lib/cmake/GTest: one level less
# to strip, libraries in lib/, and no Debian "/usr move" shortcut.
for f in "$P"/lib/cmake/GTest/*.cmake; do
  sed -i -e 's#/lib/x86_64-linux-gnu/lib#/lib/lib#g' \
         -e 's#"${CMAKE_CURRENT_LIST_DIR}/../../../../"#"${CMAKE_CURRENT_LIST_DIR}/../../../"#' \
         -e 's#"/usr/lib/x86_64-linux-gnu/cmake/GTest"#"/nonexistent/handoff-deps/GTest"#' "$f"
done
for f in "$P"/lib/cmake/GTest/G{Test,Mock}Targets.cmake; do
  # drop the first of the four "go one directory up" lines after the list file's own directory
  python3 - "$f" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
line = 'get_filename_component(_IMPORT_PREFIX "${_IMPORT_PREFIX}" PATH)\n'
assert s.count(line) == 4, (p, s.count(line))
open(p, 'w').write(s.replace(line, '', 1))
PY
done

# --- pkg-config (pkgconf 1.8.1) with its own libpkgconf, behind a wrapper ---
cp -a /usr/bin/pkgconf $A/libpkgconf.so.3 $A/libpkgconf.so.3.0.0 "$P/libexec/pkgconf/"
cat > "$P/bin/pkg-config" <<'EOF'
#!/bin/sh
# pkgconf 1.8.1 from Debian 12 with its libpkgconf.so.3 next to it.
d=$(cd "$(dirname "$(readlink -f "$0")")/../libexec/pkgconf" && pwd)
LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$d/pkgconf" "$@"
EOF
chmod +x "$P/bin/pkg-config"
ln -s pkg-config "$P/bin/pkgconf"

cat > "$P/README.txt" <<EOF
handoff non-torch build dependencies, taken from Debian 12 (bookworm) packages on $(date -u +%F):
$(for p in nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libcpp-httplib0.11 libre2-dev libre2-9 libsentencepiece-dev \
  libsentencepiece0 libgtest-dev libgmock-dev libboost1.74-dev libgloo-dev libssl-dev libssl3 zlib1g-dev libbrotli-dev \
  libbrotli1 pkgconf-bin libpkgconf3; do dpkg-query -W -f='  ${Package} ${Version}\n' $p; done)
Source with scripts/gpu-deps/use-deps.sh from the repository root.
EOF

tar -C "$WORK" -cf - prefix | xz -9e -T1 > "$HERE/deps.tar.xz.tmp"
mv "$HERE/deps.tar.xz.tmp" "$HERE/deps.tar.xz"
rm -rf "$WORK"
ls -l "$HERE/deps.tar.xz"
