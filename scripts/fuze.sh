#!/usr/bin/env bash
# Runs the fuze binary of this repository, building it first when it is missing or older than
# the sources. Used by the seed's entry points (./benchmark.sh, factory/LLM/refinery/stack/ust.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin/fuze"
if [[ ! -x "$bin" ]] || [[ -n "$(find "$root/cmd" "$root/internal" "$root/go.mod" -newer "$bin" -name '*.go' -print -quit 2>/dev/null)" ]]; then
  command -v go >/dev/null 2>&1 || { echo "fuze: $bin is missing and Go is not installed to build it" >&2; exit 1; }
  (cd "$root" && go build -o "$bin" ./cmd/fuze) >&2
fi
export FUZE_ROOT="${FUZE_ROOT:-$root}"
exec "$bin" "$@"
