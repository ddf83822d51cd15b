#!/bin/sh
# SPDX-License-Identifier: MIT
# llama-node.sh: install node-llama-cpp (Node bindings with llama.cpp's prebuilt CPU binaries,
# no compiler needed) into a cache folder outside the checkout, once; print that folder on
# stdout (its node_modules/ holds node-llama-cpp). tests/t/t5100 loads cm-train's GGUF with it.
#
#   tools/llama-node.sh [DIR]    DIR: $CM_NPM_CACHE, else /var/cache/codemill/npm when writable,
#                                else $HOME/.cache/codemill/npm
#
# --omit=optional skips the CUDA and Vulkan builds (~650 MB); the linux-x64 CPU build is named
# explicitly. Exit 0 when installed (or already there), 3 when npm is missing or fails.
set -eu
VERSION=3.21.1
dir=${1:-${CM_NPM_CACHE:-}}
if [ -z "$dir" ]; then
    dir=/var/cache/codemill/npm
    if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
        dir="${HOME:-/tmp}/.cache/codemill/npm"
    fi
fi
pkg="$dir/node_modules/node-llama-cpp/package.json"
bin="$dir/node_modules/@node-llama-cpp/linux-x64/package.json"
if [ -f "$pkg" ] && [ -f "$bin" ] && grep -q "\"version\": \"$VERSION\"" "$pkg"; then
    echo "$dir"
    exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "llama-node: npm not found (run tools/deps.sh build)" >&2; exit 3; }
mkdir -p "$dir" || { echo "llama-node: cannot create $dir" >&2; exit 3; }
[ -f "$dir/package.json" ] || echo '{"private": true}' >"$dir/package.json"
echo "llama-node: installing node-llama-cpp@$VERSION into $dir" >&2
if ! npm install --prefix "$dir" -E --omit=optional --no-audit --no-fund \
        "node-llama-cpp@$VERSION" "@node-llama-cpp/linux-x64@$VERSION" >&2; then
    echo "llama-node: npm install failed" >&2
    exit 3
fi
[ -f "$pkg" ] && [ -f "$bin" ] || { echo "llama-node: npm did not install $pkg and $bin" >&2; exit 3; }
echo "$dir"
