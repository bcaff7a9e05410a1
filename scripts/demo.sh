#!/usr/bin/env bash
# `make demo`: a real benchmark of a real Ollama server on this machine (see `fuze demo --help`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$root/bin/fuze" demo --ollama "${FUZE_OLLAMA:?FUZE_OLLAMA must name the ollama binary}"
