#!/usr/bin/env bash
# The seed's per-stack driver entry point: runs `fuze stack` with the same arguments
# (`ust.sh [@file.env]... <stack|utility> [command] [args...]`).
exec "$(dirname "${BASH_SOURCE[0]}")/../../../../scripts/fuze.sh" stack "$@"
