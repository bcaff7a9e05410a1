#!/usr/bin/env bash
# Ensures a real Ollama (v0.17.4 by default) is built from its Go module into a git-ignored
# cache folder, for the tests and `make demo`. Idempotent: an existing build of the same
# version is reused. Prints the path of the ollama binary on stdout (everything else on stderr).
#
# Recipe: Ollama builds with cgo once Debian's nlohmann-json3-dev and libstb-dev are installed
# and miniaudio/miniaudio.h (shipped by the Go module github.com/gen2brain/malgo) is on the
# include path. The CPU backend is compiled into the binary, so it runs real inference here.
set -euo pipefail

OLLAMA_VERSION="${OLLAMA_VERSION:-0.17.4}"
MALGO_VERSION="${MALGO_VERSION:-v0.11.24}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="${OLLAMA_PREFIX:-$root/.cache/ollama/v$OLLAMA_VERSION}"
bin="$prefix/bin/ollama"
stamp="$prefix/.built"

say() { printf '== %s\n' "$*" >&2; }

# The CPU backend is compiled into the binary by cgo. Without -march it targets the x86-64
# baseline (no AVX), which would make CPU benchmarks several times slower than Ollama's own
# releases; x86-64-v3 (AVX2, FMA, F16C) is what those releases' common CPU variant assumes.
arch_flags=""
if [[ "$(uname -m)" == "x86_64" ]]; then
  arch_flags="${OLLAMA_CPU_MARCH:--march=x86-64-v3}"
fi
build_id="$OLLAMA_VERSION $arch_flags"

if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$build_id" ]]; then
  echo "$bin"
  exit 0
fi

"$root/scripts/ensure-build-deps.sh" >&2

say "building Ollama v$OLLAMA_VERSION from its Go module (cgo; several minutes on 2 cores)"
mod_dir="$(cd "$root" && go mod download -json "github.com/ollama/ollama@v$OLLAMA_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
malgo_dir="$(cd "$root" && go mod download -json "github.com/gen2brain/malgo@$MALGO_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$mod_dir" ]] || { echo "ensure-ollama: could not download github.com/ollama/ollama@v$OLLAMA_VERSION" >&2; exit 1; }
[[ -f "$malgo_dir/miniaudio.h" ]] || { echo "ensure-ollama: miniaudio.h not found in github.com/gen2brain/malgo@$MALGO_VERSION" >&2; exit 1; }

include="$prefix/include"
mkdir -p "$include/miniaudio" "$prefix/bin"
cp "$malgo_dir/miniaudio.h" "$include/miniaudio/miniaudio.h"

tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# The module cache is read-only; go build only reads it and writes the binary to -o.
(cd "$mod_dir" && CGO_ENABLED=1 CGO_CPPFLAGS="-I$include -I/usr/include/stb" \
  CGO_CFLAGS="-O3 $arch_flags" CGO_CXXFLAGS="-O3 $arch_flags" \
  go build -trimpath -ldflags "-s -w -X github.com/ollama/ollama/version.Version=$OLLAMA_VERSION" -o "$tmp" .)
mv "$tmp" "$bin"
echo "$build_id" > "$stamp"
say "ollama v$OLLAMA_VERSION ready: $bin"
echo "$bin"
