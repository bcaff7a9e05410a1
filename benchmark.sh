#!/usr/bin/env bash
# The seed's orchestrator entry point: runs `fuze bench` with the same arguments.
exec "$(dirname "${BASH_SOURCE[0]}")/scripts/fuze.sh" bench "$@"
