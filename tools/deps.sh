#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the Debian packages codemill needs, only those that are missing.
# An entry PKG:CMD is satisfied by the command CMD on the PATH too (node and npm may come from
# another Debian-format repository, whose nodejs bundles npm: Debian's npm then cannot install).
#   tools/deps.sh build   libraries and tools for building and testing (python3-torch and
#                         python3-numpy: t5100 checks model export/import against PyTorch)
#   tools/deps.sh bench   also the peers' needs (hyperfine, sentencepiece)
set -eu
BUILD_PKGS="build-essential pkg-config libarchive-dev libzstd-dev libpcre2-dev libsqlite3-dev
libopenblas-dev libdnnl-dev libxxhash-dev libcmocka-dev libjansson-dev zstd xz-utils bzip2 zip unzip
p7zip-full libarchive-tools sqlite3 jq python3 python3-torch python3-numpy nodejs:node npm:npm time
clang clang-format libclang-rt-14-dev binutils valgrind libopenmpi-dev openmpi-bin"
BENCH_PKGS="hyperfine sentencepiece"
want="$BUILD_PKGS"
[ "${1:-build}" = bench ] && want="$BUILD_PKGS $BENCH_PKGS"
missing=""
for e in $want; do
    p=${e%%:*}
    cmd=${e#*:}
    if [ "$cmd" != "$e" ] && command -v "$cmd" >/dev/null 2>&1; then continue; fi
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
if [ "$(id -u)" != 0 ]; then
    echo "deps: need root to run apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends $missing >&2
