#!/usr/bin/env bash
# gpu-run.sh — a reproducible GPU run of fuze against real Ollama (v0.17.4) with CUDA.
#
# On a Linux machine with an NVIDIA GPU, nvidia-smi, CUDA's nvcc, cmake and ninja (or make), it:
#   1. builds Ollama's CUDA backend (and one AVX2/AVX-512 CPU backend for the layers left on the
#      CPU) from the Ollama source, and lays out PREFIX/bin/ollama, PREFIX/lib/ollama/libggml-*.so,
#      PREFIX/lib/ollama/cuda_vN/libggml-cuda.so (N: the CUDA major version, as Ollama's releases);
#   2. writes the synthetic models with `fuze synth` (llama-8b F16 ~16 GB, llama-1b ~2.5 GB);
#   3. starts a persistent Ollama daemon (the model store fuze discovers models on; setsid, stopped
#      at exit) and creates the models in it from the GGUF files;
#   4. measures "Ollama alone": one plain /api/generate (stream false, num_predict 128,
#      num_gpu 999) on a daemon pinned to the GPU, after a warm-up, and keeps the answer;
#   5. runs `fuze stack @gpu-<model>.env ollama` per model (fuze starts its own test daemon
#      pinned to the GPU by UUID and sweeps num_gpu over NG_PERCENT_SET, EXHAUSTIVE=1);
#   6. runs the GPU test (TestGPURun: internal/stack/ollama/gpu_test.go, build tag gpu) on every run JSONL;
#   7. collects CSV, JSONL, transcripts, a summary table, nvidia-smi and versions into OUT.
# Steps already done (binary in place, libraries built, models written or created) are skipped,
# so a second run on the same machine only measures again.
#
# Inputs (flags, or the environment variable in brackets):
#   --ollama FILE      ollama binary built from its Go module, e.g. by scripts/ensure-ollama.sh
#                      (.cache/ollama/v0.17.4/bin/ollama; a .gz of it is accepted)      [OLLAMA_IN]
#   --src DIR          the Ollama source tree of the same version: its CMakeLists.txt and
#                      ml/backend/ggml/ggml/. Get it with
#                        go mod download -json github.com/ollama/ollama@v0.17.4   (the "Dir" field)
#                      (only read; the build goes to WORK/build)                       [OLLAMA_SRC]
#   --fuze FILE        fuze binary for linux/amd64 (default: bin/fuze, built with go if missing)
#                      (.gz accepted)                                                  [FUZE_BIN]
#   --test-bin FILE    the GPU test compiled elsewhere, for machines without Go:
#                        go test -c -tags gpu -o ollama-gpu.test ./internal/stack/ollama/
#                      (default: `go test -tags gpu` when go is on PATH) (.gz accepted) [GPU_TEST_BIN]
#   --work DIR         work folder: prefix, build, models, store, logs (default /var/tmp/fuze-gpu)
#                                                                                      [WORK]
#   --out DIR          where the collected results go (default WORK/results)           [OUT_DIR]
#   --models LIST      presets to run, in order (default "llama-8b llama-1b")          [MODELS]
#   --deadline SECS    skip a model's sweep when fewer than MODEL_MIN_SECS (default 100) seconds
#                      are left of SECS counted from the start (0: no deadline)        [DEADLINE]
#   --bundle FILE      also write OUT as a .tgz after every step (survives a killed run) [BUNDLE]
#   --save-libs DIR    save the built lib/ollama as libs.tar.xz.part-* (15 MB pieces)  [SAVE_LIBS]
#   --cpu-only         no CUDA build and no GPU: a dry run of the whole flow on a CPU   [CPU_ONLY=1]
# TWO_GPU=1 (environment) runs scripts/gpu-two.sh's two-GPU runs (sequential, parallel, split)
# of the first model instead of steps 4 to 6.
# Sweep settings (environment): NG_PERCENT_SET ("100 75 50 25 10"), BENCH_NUM_PREDICT (64),
# BENCH_REPEAT (2), BENCH_NUM_CTX (2048), PROMPT, CUDA_ARCH (90), CPU_VARIANT (detected),
# PERSISTENT_PORT (11534), TEST_PORT_A (11535), ALONE_PORT (11537).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
t_start=$(date +%s)

OLLAMA_IN="${OLLAMA_IN:-}"
OLLAMA_SRC="${OLLAMA_SRC:-}"
FUZE_BIN="${FUZE_BIN:-}"
GPU_TEST_BIN="${GPU_TEST_BIN:-}"
WORK="${WORK:-/var/tmp/fuze-gpu}"
OUT_DIR="${OUT_DIR:-}"
MODELS="${MODELS:-llama-8b llama-1b}"
DEADLINE="${DEADLINE:-0}"
MODEL_MIN_SECS="${MODEL_MIN_SECS:-100}"
BUNDLE="${BUNDLE:-}"
SAVE_LIBS="${SAVE_LIBS:-}"
CPU_ONLY="${CPU_ONLY:-0}"
CUDA_ARCH="${CUDA_ARCH:-90}"
PERSISTENT_PORT="${PERSISTENT_PORT:-11534}"
TEST_PORT_A="${TEST_PORT_A:-11535}"
ALONE_PORT="${ALONE_PORT:-11537}"
NG_PERCENT_SET="${NG_PERCENT_SET:-100 75 50 25 10}"
BENCH_NUM_PREDICT="${BENCH_NUM_PREDICT:-64}"
BENCH_REPEAT="${BENCH_REPEAT:-2}"
BENCH_NUM_CTX="${BENCH_NUM_CTX:-2048}"
PROMPT="${PROMPT:-Tell me about GPUs.}"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --ollama) OLLAMA_IN="$2"; shift 2 ;;
    --src) OLLAMA_SRC="$2"; shift 2 ;;
    --fuze) FUZE_BIN="$2"; shift 2 ;;
    --test-bin) GPU_TEST_BIN="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --out) OUT_DIR="$2"; shift 2 ;;
    --models) MODELS="$2"; shift 2 ;;
    --deadline) DEADLINE="$2"; shift 2 ;;
    --bundle) BUNDLE="$2"; shift 2 ;;
    --save-libs) SAVE_LIBS="$2"; shift 2 ;;
    --cpu-only) CPU_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-run: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\n== [%4ss] %s\n' "$(( $(date +%s) - t_start ))" "$*"; }
die() { printf '\n!! gpu-run: %s\n' "$*" >&2; exit 1; }
abs() { (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd)" "$(basename "$1")"); }

mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
OUT_DIR="${OUT_DIR:-$WORK/results}"
PREFIX="$WORK/prefix"
BUILD="$WORK/build"
MODELDIR="$WORK/gguf"
STORE="$WORK/store"
LOGS="$WORK/logs"
mkdir -p "$OUT_DIR" "$PREFIX/bin" "$PREFIX/lib/ollama" "$MODELDIR" "$STORE" "$LOGS"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
export HOME="${HOME:-$WORK}"

bundle() {
  [[ -n "$BUNDLE" ]] || return 0
  tar -czf "$BUNDLE.tmp" -C "$(dirname "$OUT_DIR")" "$(basename "$OUT_DIR")" 2>/dev/null && mv "$BUNDLE.tmp" "$BUNDLE" || true
}

# unpack SRC DEST: copies a binary, gunzipping a .gz, unless DEST is already that file.
unpack() {
  local src="$1" dest="$2"
  [[ -f "$src" ]] || die "$src: no such file"
  if [[ "$src" == *.gz ]]; then
    gzip -dc "$src" > "$dest.tmp"
  else
    cp "$src" "$dest.tmp"
  fi
  chmod +x "$dest.tmp"
  mv "$dest.tmp" "$dest"
}

# ---- daemons ----------------------------------------------------------------------------------
declare -a started_pgids=()
stop_pgid() {
  local pgid="$1" i
  kill -TERM -- "-$pgid" 2>/dev/null || return 0
  for i in $(seq 1 50); do kill -0 -- "-$pgid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL -- "-$pgid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  for p in "${started_pgids[@]}"; do stop_pgid "$p"; done
  bundle
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_daemon NAME PORT CUDA_VISIBLE_DEVICES LOG: `ollama serve` in its own session (its pid,
# also its process group, in DAEMON_PID), waits until it answers.
DAEMON_PID=""
start_daemon() {
  local name="$1" port="$2" cuda="$3" log="$4" pid
  if curl -fsS -m 2 "http://127.0.0.1:$port/api/version" >/dev/null 2>&1; then
    die "port $port already answers: stop that daemon or choose another port ($name)"
  fi
  OLLAMA_HOST="127.0.0.1:$port" OLLAMA_MODELS="$STORE" CUDA_VISIBLE_DEVICES="$cuda" \
    setsid "$OLLAMA" serve >"$log" 2>&1 </dev/null &
  pid=$!
  started_pgids+=("$pid")
  for _ in $(seq 1 300); do
    if curl -fsS -m 2 "http://127.0.0.1:$port/api/tags" >/dev/null 2>&1; then DAEMON_PID="$pid"; return 0; fi
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$log" >&2; die "$name exited at start (log $log)"; }
    sleep 0.2
  done
  tail -n 30 "$log" >&2
  die "$name did not answer on port $port within 60 s (log $log)"
}

forget_pgid() {
  local keep=() p
  for p in "${started_pgids[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  started_pgids=("${keep[@]}")
}

# ---- inputs -----------------------------------------------------------------------------------
command -v curl >/dev/null || die "curl is needed"
command -v python3 >/dev/null || die "python3 is needed (JSON answers and the summary)"

[[ -n "$OLLAMA_IN" ]] || die "--ollama FILE is required (the ollama binary; scripts/ensure-ollama.sh builds one)"
OLLAMA="$PREFIX/bin/ollama"
say "ollama binary -> $OLLAMA"
unpack "$OLLAMA_IN" "$OLLAMA"

FUZE="$WORK/fuze"
if [[ -z "$FUZE_BIN" ]]; then
  FUZE_BIN="$root/bin/fuze"
  if [[ ! -x "$FUZE_BIN" ]]; then
    command -v go >/dev/null || die "--fuze FILE is required where go is not installed"
    (cd "$root" && CGO_ENABLED=0 go build -o "$FUZE_BIN" ./cmd/fuze)
  fi
fi
unpack "$FUZE_BIN" "$FUZE"

# ---- machine and versions ---------------------------------------------------------------------
info="$OUT_DIR/machine.txt"
{
  echo "date: $(date -Iseconds)"
  echo "uname: $(uname -srm)"
  echo "cpus: $(nproc); $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //')"
  echo "memory: $(free -g 2>/dev/null | awk '/^Mem:/{print $2 " GiB"}')"
  echo "ollama: $("$OLLAMA" --version 2>&1 | sed -n 's/.*client version is //p' | head -n 1)"
  echo "fuze: $("$FUZE" version 2>&1)"
  if command -v nvidia-smi >/dev/null; then
    echo "nvidia-smi --query-gpu:"
    nvidia-smi --query-gpu=index,name,uuid,memory.total,driver_version,pci.bus_id,power.limit,clocks.max.memory --format=csv 2>&1 || true
    echo; nvidia-smi 2>&1 || true
  fi
  command -v nvcc >/dev/null && { echo "nvcc:"; nvcc --version 2>&1 | tail -n 2; }
  command -v cmake >/dev/null && echo "cmake: $(cmake --version | head -n 1)"
  command -v ninja >/dev/null && echo "ninja: $(ninja --version)"
  command -v go >/dev/null && echo "go: $(go version)"
  [[ -d /run/systemd/system ]] && echo "systemd: init system (fuze runs its test daemons as systemd units as root)"
  echo "disk: $(df -h "$WORK" | awk 'NR==2{print $4 " free of " $2 " at " $6}')"
} >"$info" 2>&1
cat "$info"

GPU_UUID=""
CUDA_MAJOR=""
if [[ "$CPU_ONLY" != 1 ]]; then
  command -v nvidia-smi >/dev/null || die "nvidia-smi not found (use --cpu-only for a dry run without a GPU)"
  GPU_UUID="$(nvidia-smi --query-gpu=uuid --format=csv,noheader | head -n 1 | tr -d ' ')"
  [[ "$GPU_UUID" == GPU-* ]] || die "no GPU UUID from nvidia-smi"
  if ! command -v nvcc >/dev/null; then
    for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do [[ -x "$d/nvcc" ]] && { export PATH="$d:$PATH"; break; }; done
  fi
  command -v nvcc >/dev/null || die "nvcc not found (CUDA toolkit needed to build the CUDA backend)"
  CUDA_MAJOR="$(nvcc --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')"
  [[ -n "$CUDA_MAJOR" ]] || die "cannot read the CUDA version from nvcc --version"
fi

# ---- 1. build the CUDA backend (in the background while the models are written) --------------
LIBDIR="$PREFIX/lib/ollama"
CUDADIR="$LIBDIR/cuda_v$CUDA_MAJOR"
CPU_VARIANT="${CPU_VARIANT:-}"
if [[ -z "$CPU_VARIANT" ]]; then
  flags="$(grep -m1 '^flags' /proc/cpuinfo || true)"
  if [[ "$flags" == *" avx512vbmi "* && "$flags" == *" avx512_vnni "* ]]; then CPU_VARIANT=icelake
  elif [[ "$flags" == *" avx512f "* ]]; then CPU_VARIANT=skylakex
  elif [[ "$flags" == *" avx2 "* && "$flags" == *" f16c "* && "$flags" == *" fma "* ]]; then CPU_VARIANT=haswell
  else CPU_VARIANT=x64; fi
fi
build_pid=""
build_log="$LOGS/build.log"
need_build=0
if [[ "$CPU_ONLY" != 1 ]]; then
  [[ -f "$CUDADIR/libggml-cuda.so" && -n "$(ls "$LIBDIR"/libggml-base.so* 2>/dev/null)" ]] || need_build=1
  if [[ $need_build == 1 ]]; then
    [[ -n "$OLLAMA_SRC" ]] || die "--src DIR (the Ollama source) is required to build the CUDA backend"
    [[ -f "$OLLAMA_SRC/CMakeLists.txt" && -d "$OLLAMA_SRC/ml/backend/ggml/ggml/src/ggml-cuda" ]] ||
      die "$OLLAMA_SRC is not an Ollama source tree (CMakeLists.txt, ml/backend/ggml/ggml/src/ggml-cuda)"
    command -v cmake >/dev/null || die "cmake not found"
    gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
    targets=(ggml-cuda "ggml-cpu-$CPU_VARIANT")
    say "building ${targets[*]} for sm_$CUDA_ARCH (CUDA $CUDA_MAJOR) in $BUILD (log $build_log)"
    (
      set -e
      cmake -S "$OLLAMA_SRC" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" -DCMAKE_DISABLE_FIND_PACKAGE_Vulkan=ON
      cmake --build "$BUILD" --parallel "$(nproc)" --target "${targets[@]}"
    ) >"$build_log" 2>&1 &
    build_pid=$!
  else
    say "CUDA backend already in $CUDADIR"
  fi
fi

# ---- 2. synthetic models ----------------------------------------------------------------------
# Each model needs its GGUF plus the store's copy: about 33 GB for llama-8b, 5 GB for llama-1b.
need_gb=0
for m in $MODELS; do
  case "$m" in llama-8b) need_gb=$((need_gb + 33)) ;; llama-1b) need_gb=$((need_gb + 6)) ;; esac
done
free_gb=$(df -BG --output=avail "$WORK" | tail -n 1 | tr -dc 0-9)
[[ "$free_gb" -ge "$need_gb" ]] || die "$WORK has ${free_gb} GB free; the models need about ${need_gb} GB"
declare -A synth_pids=()
for m in $MODELS; do
  f="$MODELDIR/$m-f16.gguf"
  if [[ -f "$f" ]]; then say "model file $f exists"; continue; fi
  say "writing $f (fuze synth --preset $m)"
  nice -n 5 "$FUZE" synth --preset "$m" --name "fuze-$m" -o "$f" >"$LOGS/synth-$m.log" 2>&1 &
  synth_pids[$m]=$!
done

# ---- 3. persistent daemon and models ----------------------------------------------------------
say "persistent daemon on 127.0.0.1:$PERSISTENT_PORT (store $STORE; CPU only: it only holds the models)"
start_daemon "persistent daemon" "$PERSISTENT_PORT" "" "$LOGS/ollama_persistent.log"
for m in $MODELS; do
  if [[ -n "${synth_pids[$m]:-}" ]]; then
    wait "${synth_pids[$m]}" || { cat "$LOGS/synth-$m.log"; die "fuze synth --preset $m failed"; }
    say "wrote $MODELDIR/$m-f16.gguf ($(du -h "$MODELDIR/$m-f16.gguf" | cut -f1))"
  fi
  if curl -fsS "http://127.0.0.1:$PERSISTENT_PORT/api/tags" | grep -q "\"name\":\"fuze-$m:latest\""; then
    say "model fuze-$m:latest already in the store"
    continue
  fi
  say "creating fuze-$m:latest from $MODELDIR/$m-f16.gguf"
  printf 'FROM %s\n' "$MODELDIR/$m-f16.gguf" >"$MODELDIR/$m.Modelfile"
  OLLAMA_HOST="127.0.0.1:$PERSISTENT_PORT" "$OLLAMA" create "fuze-$m" -f "$MODELDIR/$m.Modelfile" >"$LOGS/create-$m.log" 2>&1 ||
    { tail -n 20 "$LOGS/create-$m.log"; die "ollama create fuze-$m failed"; }
done
curl -fsS "http://127.0.0.1:$PERSISTENT_PORT/api/tags" | python3 -c 'import json,sys; [print("   %s  %.2f GB" % (m["name"], m["size"]/1e9)) for m in json.load(sys.stdin)["models"]]'

# ---- 1b. lay out the CUDA backend -------------------------------------------------------------
if [[ -n "$build_pid" ]]; then
  say "waiting for the CUDA build"
  if ! wait "$build_pid"; then tail -n 40 "$build_log"; cp "$build_log" "$OUT_DIR/build.log"; die "CUDA backend build failed (log $build_log)"; fi
  say "build done; laying out $LIBDIR"
  tail -n 3 "$build_log"
  mkdir -p "$CUDADIR"
  cp -a "$BUILD"/lib/ollama/libggml-base.so* "$LIBDIR"/
  cp -a "$BUILD/lib/ollama/libggml-cpu-$CPU_VARIANT.so" "$LIBDIR"/
  cp -a "$BUILD/lib/ollama/libggml-cuda.so" "$CUDADIR"/
  # CUDA runtime libraries beside it, as Ollama's install step does (links to the toolkit's).
  cudalibs=""
  for d in "$(dirname "$(dirname "$(command -v nvcc)")")"/lib64 "$(dirname "$(dirname "$(command -v nvcc)")")"/targets/x86_64-linux/lib; do
    [[ -d "$d" ]] && cudalibs="$cudalibs${cudalibs:+:}$d"
  done
  LD_LIBRARY_PATH="$LIBDIR:$cudalibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$CUDADIR/libggml-cuda.so" |
    awk '/lib(cudart|cublas|cublasLt)\.so/ && $3 ~ /^\// {print $3}' | while read -r lib; do
      ln -sf "$(readlink -f "$lib")" "$CUDADIR/$(basename "$lib")"
    done
  if LD_LIBRARY_PATH="$LIBDIR:$CUDADIR" ldd "$CUDADIR/libggml-cuda.so" | grep -q 'not found'; then
    LD_LIBRARY_PATH="$LIBDIR:$CUDADIR" ldd "$CUDADIR/libggml-cuda.so"
    die "libggml-cuda.so has unresolved libraries"
  fi
  if [[ -n "$SAVE_LIBS" ]]; then
    mkdir -p "$SAVE_LIBS"
    ( tar -C "$PREFIX" -cf - --exclude='lib/ollama/cuda_v*/libcu*' lib/ollama | xz -T0 -3 |
        split -b 15M - "$SAVE_LIBS/libs.tar.xz.part-" ) &
  fi
fi
ls -la "$LIBDIR" ${CUDA_MAJOR:+"$CUDADIR"} | sed 's/^/   /'
bundle

# ---- 4b. two GPUs (TWO_GPU=1): scripts/gpu-two.sh's runs instead of steps 4 to 6 ---------------
if [[ "${TWO_GPU:-0}" == 1 ]]; then
  source "$root/scripts/gpu-two.sh"
  say "done: results in $OUT_DIR/two-gpu"
  exit 0
fi

# ---- 4. Ollama alone --------------------------------------------------------------------------
first_model="${MODELS%% *}"
if [[ "$CPU_ONLY" != 1 ]]; then
  say "Ollama alone: daemon pinned to $GPU_UUID on 127.0.0.1:$ALONE_PORT, fuze-$first_model:latest, num_gpu 999, num_predict 128"
  alone_log="$LOGS/ollama_alone.log"
  start_daemon "Ollama-alone daemon" "$ALONE_PORT" "$GPU_UUID" "$alone_log"
  alone_pid="$DAEMON_PID"
  grep -m3 -E 'inference compute|no compatible GPUs|library=' "$alone_log" | sed 's/^/   /' || true
  curl -fsS -m 600 "http://127.0.0.1:$ALONE_PORT/api/generate" \
    -d "{\"model\":\"fuze-$first_model:latest\",\"prompt\":\"warm up\",\"stream\":false,\"options\":{\"num_predict\":1,\"num_gpu\":999}}" >"$OUT_DIR/ollama-alone-warmup.json" ||
    { tail -n 40 "$alone_log"; die "Ollama-alone warm-up request failed"; }
  curl -fsS -m 600 "http://127.0.0.1:$ALONE_PORT/api/generate" \
    -d "{\"model\":\"fuze-$first_model:latest\",\"prompt\":\"$PROMPT\",\"stream\":false,\"options\":{\"num_predict\":128,\"num_gpu\":999,\"temperature\":0,\"seed\":42,\"num_ctx\":$BENCH_NUM_CTX}}" >"$OUT_DIR/ollama-alone-$first_model.json" ||
    { tail -n 40 "$alone_log"; die "Ollama-alone request failed"; }
  curl -fsS "http://127.0.0.1:$ALONE_PORT/api/ps" >"$OUT_DIR/ollama-alone-ps.json" || true
  python3 - "$OUT_DIR/ollama-alone-$first_model.json" "$OUT_DIR/ollama-alone-ps.json" <<'EOF' | tee "$OUT_DIR/ollama-alone.txt"
import json, sys
r = json.load(open(sys.argv[1]))
print("   Ollama alone: eval_count=%d eval_duration=%dns -> %.2f tok/s (prompt %d tokens, load %.2fs)" % (
    r["eval_count"], r["eval_duration"], r["eval_count"] / (r["eval_duration"] / 1e9),
    r.get("prompt_eval_count", 0), r.get("load_duration", 0) / 1e9))
try:
    for m in json.load(open(sys.argv[2]))["models"]:
        print("   /api/ps: %s size=%d size_vram=%d (%.0f%% in GPU memory)" % (m["name"], m["size"], m["size_vram"], 100 * m["size_vram"] / max(m["size"], 1)))
except Exception as e:
    print("   /api/ps: %s" % e)
EOF
  nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv 2>&1 | sed 's/^/   /'
  grep -q 'size_vram":[1-9]' "$OUT_DIR/ollama-alone-ps.json" ||
    { grep -E 'inference compute|library|cuda|CUDA' "$alone_log" | tail -n 20; die "the model is not in GPU memory: Ollama did not use the CUDA backend"; }
  stop_pgid "$alone_pid"; forget_pgid "$alone_pid"
  grep -E 'inference compute|offload|load_tensors|model weights' "$alone_log" | tail -n 12 >"$OUT_DIR/ollama-alone-log-tail.txt" || true
  bundle
fi

# ---- 5. fuze sweeps ---------------------------------------------------------------------------
jsonls=()
for m in $MODELS; do
  if [[ "$DEADLINE" -gt 0 ]]; then
    left=$(( DEADLINE - ($(date +%s) - t_start) ))
    if [[ "$left" -lt "$MODEL_MIN_SECS" ]]; then
      say "skipping the fuze-$m sweep: ${left}s left of the ${DEADLINE}s deadline (MODEL_MIN_SECS=$MODEL_MIN_SECS)"
      echo "skipped fuze-$m: ${left}s left" >>"$OUT_DIR/skipped.txt"
      continue
    fi
  fi
  logdir="$LOGS/fuze-$m"
  mkdir -p "$logdir"
  envf="$WORK/gpu-$m.env"
  cat >"$envf" <<EOF
# fuze stack @$(basename "$envf") ollama — written by scripts/gpu-run.sh
PERSISTENT_PORT=$PERSISTENT_PORT
TEST_PORT_A=$TEST_PORT_A
SKIP_TEST_UNITS=0
OLLAMA_BIN=$OLLAMA
OLLAMA_MODELS_DIR=$STORE
LOG_DIR=$logdir
INCLUDE_MODELS='^fuze-$m:latest\$'
FAST_MODE=1
AUTO_NG=1
EXHAUSTIVE=1
ZERO_TOKPS_BREAK=0
NO_IMPROVE_LIMIT=0
NG_PERCENT_SET="$NG_PERCENT_SET"
BENCH_NUM_PREDICT=$BENCH_NUM_PREDICT
BENCH_REPEAT=$BENCH_REPEAT
BENCH_NUM_CTX=$BENCH_NUM_CTX
PROMPT="$PROMPT"
TEMPERATURE=0.0
TIMEOUT_GEN=600
WAIT_API_SECS=120
PUBLISH_BEST=0
GC_AFTER_RUN=0
DEBUG_BENCH=0
VERBOSE=1
EOF
  say "fuze stack @$envf ollama   (fuze-$m:latest; num_gpu over $NG_PERCENT_SET % of the layers)"
  cp "$envf" "$OUT_DIR/"
  # fuze runs in the background: its rows are copied to OUT every few seconds (a run killed from
  # outside still leaves them), and past the deadline it gets SIGINT (it then records the attempt
  # as canceled, stops its test daemon and exits).
  console="$OUT_DIR/fuze-$m.console.txt"
  # EXTRA_ENV: an env file layered over the run's (e.g. results/gpu/tune-llama-8b.env).
  (cd "$root" && exec "$FUZE" stack "@$envf" ${EXTRA_ENV:+"@$EXTRA_ENV"} ollama) >"$console" 2>&1 &
  fpid=$!
  tail -n +1 -f --pid="$fpid" "$console" &
  tpid=$!
  copy_run() {
    local csv
    csv="$(ls -t "$logdir"/ollama_bench_*.csv 2>/dev/null | head -n 1 || true)"
    [[ -n "$csv" ]] || return 0
    cp "$csv" "$OUT_DIR/ollama_$m.csv"
    [[ -f "${csv%.csv}.jsonl" ]] && cp "${csv%.csv}.jsonl" "$OUT_DIR/ollama_$m.jsonl"
    [[ -f "${csv%.csv}.tuning.json" ]] && cp "${csv%.csv}.tuning.json" "$OUT_DIR/ollama_$m.tuning.json"
    return 0
  }
  interrupted=0
  while kill -0 "$fpid" 2>/dev/null; do
    sleep 5
    copy_run; bundle
    if [[ "$DEADLINE" -gt 0 && $interrupted == 0 && $(( $(date +%s) - t_start )) -ge "$DEADLINE" ]]; then
      say "deadline of ${DEADLINE}s reached: interrupting fuze (SIGINT)"
      kill -INT "$fpid" 2>/dev/null || true
      interrupted=1
      echo "fuze-$m sweep interrupted at the ${DEADLINE}s deadline" >>"$OUT_DIR/skipped.txt"
    fi
  done
  set +e; wait "$fpid"; rc=$?; wait "$tpid" 2>/dev/null; set -e
  copy_run
  [[ -f "$OUT_DIR/ollama_$m.csv" ]] || die "fuze wrote no run CSV for fuze-$m (exit $rc)"
  for l in "$logdir"/ollama_a_*.log; do
    [[ -f "$l" ]] || continue
    { echo "# $(basename "$l"): lines about devices, offload and loads, then the last 40 lines"
      grep -E 'inference compute|offload|offloaded|load_tensors|model weights|msg="load' "$l" | tail -n 60
      echo "# ..."; tail -n 40 "$l"; } >"$OUT_DIR/ollama-test-daemon-$m.log.txt"
  done
  jsonls+=("$OUT_DIR/ollama_$m.jsonl")
  [[ $rc == 0 ]] || echo "!! fuze stack exited $rc for fuze-$m"
  bundle
done

# ---- 6. summary and the GPU test --------------------------------------------------------------
if [[ ${#jsonls[@]} -gt 0 ]]; then
  say "summary"
  python3 - "${jsonls[@]}" <<'EOF' | tee "$OUT_DIR/summary.md"
import json, sys, statistics
for path in sys.argv[1:]:
    rows = [json.loads(l) for l in open(path) if l.strip()]
    if not rows:
        continue
    r0 = rows[0]["row"]
    print("\n### %s on %s (%s)\n" % (r0["base_model"], r0["gpu_name"] or "CPU", path.rsplit("/", 1)[-1]))
    print("| label | num_gpu | tok/s (CSV col 12) | repeats min–max | eval_count/eval_duration | CSV vs server | roofline tok/s | share | VRAM / model bytes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for rec in rows:
        row, s = rec["row"], rec["sample"] or {}
        ev = s.get("server_output_tokens", 0) / (s.get("server_decode_duration_ns", 0) / 1e9) if s.get("server_decode_duration_ns") else 0
        rep = s.get("repeat_tps") or []
        spread = "%.2f–%.2f" % (min(rep), max(rep)) if rep else "-"
        diff = "%+.3f%%" % (100 * (row["tokens_per_sec"] - ev) / ev) if ev else "-"
        st = s.get("settings") or {}
        vram = "%s / %s" % (st.get("vram_bytes", "?"), st.get("model_bytes", "?"))
        rl = s.get("roofline_tps", 0)
        print("| %s | %s | %.2f | %s | %d/%dns = %.3f | %s | %s | %s | %s |" % (
            row["variant_label"], row["num_gpu"], row["tokens_per_sec"], spread,
            s.get("server_output_tokens", 0), s.get("server_decode_duration_ns", 0), ev, diff,
            "%.2f" % rl if rl else "-", "%.3f" % s["roofline_share"] if s.get("roofline_share") else "-", vram))
        if s.get("outcome") != "ok":
            print("|  | ↳ %s: %s |" % (s.get("outcome"), s.get("error", "")))
EOF
  bundle
  joined="$(IFS=:; echo "${jsonls[*]}")"
  say "GPU test (internal/stack/ollama/gpu_test.go) on $joined"
  set +e
  if [[ -n "$GPU_TEST_BIN" ]]; then
    unpack "$GPU_TEST_BIN" "$WORK/ollama-gpu.test"
    FUZE_GPU_RUN_JSONL="$joined" "$WORK/ollama-gpu.test" -test.run '^TestGPURun$' -test.v -test.count=1 2>&1 | tee "$OUT_DIR/gpu-test.txt"
    trc=${PIPESTATUS[0]}
  elif command -v go >/dev/null; then
    (cd "$root" && FUZE_GPU_RUN_JSONL="$joined" go test -count=1 -tags gpu ./internal/stack/ollama/ -run '^TestGPURun$' -v) 2>&1 | tee "$OUT_DIR/gpu-test.txt"
    trc=${PIPESTATUS[0]}
  else
    echo "no go and no --test-bin: GPU test not run" | tee "$OUT_DIR/gpu-test.txt"; trc=0
  fi
  set -e
  [[ $trc == 0 ]] && say "GPU test passed" || say "GPU test FAILED (exit $trc)"
fi

say "done: results in $OUT_DIR"
ls -la "$OUT_DIR" | sed 's/^/   /'
