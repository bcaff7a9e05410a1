#!/usr/bin/env bash
# The seed's env generator entry point: the original's flags, run by `fuze env` (see usage below).
# scripts/fuze.sh builds bin/fuze on first use, as for ./benchmark.sh and ../ust.sh.
set -euo pipefail

me="generate-envs.sh"
fuze="$(dirname "${BASH_SOURCE[0]}")/../../../../../scripts/fuze.sh"

usage() {
  cat <<'USAGE'
Usage:
  generate-envs.sh [--mode explore|preprod|both] [--include REGEX] [--host HOST:PORT]
                   [--overwrite] [--dry-run] [--template FILE --dest DIR]
      One env file per model on the Ollama daemon (never fuze's baked variants), from the
      explore and/or preprod template (default: both) into factory/LLM/refinery/stack/env/<mode>/;
      existing files are kept unless --overwrite; --dry-run only prints the plan.
      Runs: fuze env generate ...
  generate-envs.sh --promote --all
  generate-envs.sh --promote --model REGEX [--model REGEX]...
      Copy preprod env files to prod as they are: all of them, or those whose file name or
      model tag matches a REGEX. Needs no daemon (--host is accepted and not used).
      Runs: fuze env promote ...
  generate-envs.sh -h | --help

Exit status: 0 success, 1 failure (e.g. the daemon is not running), 2 bad command line.
USAGE
}

bad() {
  echo "$me: $* (see $me --help)" >&2
  exit 2
}

promote=0
gen=()   # flags for fuze env generate
prom=()  # flags for fuze env promote
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --promote) promote=1 ;;
    --all) prom+=("$1") ;;
    --model)
      (($# >= 2)) || bad "$1 needs a value"
      prom+=("$1" "$2"); shift ;;
    --model=*) prom+=("$1") ;;
    --host)
      (($# >= 2)) || bad "$1 needs a value"
      host=("$1" "$2"); shift ;;
    --host=*) host=("$1") ;;
    --mode | --include | --template | --dest)
      (($# >= 2)) || bad "$1 needs a value"
      gen+=("$1" "$2"); shift ;;
    --mode=* | --include=* | --template=* | --dest=* | --overwrite | --dry-run) gen+=("$1") ;;
    *) bad "unknown argument: $1" ;;
  esac
  shift
done

if ((promote)); then
  ((${#gen[@]} == 0)) || bad "--promote takes only --all or --model REGEX (not ${gen[*]})"
  ((${#prom[@]} > 0)) || bad "--promote needs --all or --model REGEX"
  exec "$fuze" env promote "${prom[@]}"
fi
((${#prom[@]} == 0)) || bad "${prom[0]%%=*} goes with --promote"
exec "$fuze" env generate ${host+"${host[@]}"} ${gen[@]+"${gen[@]}"}
