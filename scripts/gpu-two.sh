# gpu-two.sh — the two-GPU runs of fuze (issue "Two GPUs"), sourced by scripts/gpu-run.sh when
# TWO_GPU=1, after it has laid out Ollama with its CUDA backend, written and created the models
# and started the persistent daemon (so those steps are shared and skipped when already done):
#
#   TWO_GPU=1 MODELS=llama-8b scripts/gpu-run.sh --ollama FILE --src DIR [--work DIR] [--out DIR]
#
# On a machine with two NVIDIA GPUs it runs `fuze stack ollama` on the first model of MODELS three
# times, each with its own env file, LOG_DIR and console:
#   seq    endpoints A and B (one test daemon pinned to each GPU by UUID), PARALLEL_ENDPOINTS=0
#   par    the same, PARALLEL_ENDPOINTS=1: A and B measured at the same time
#   split  RESERVE_GPU_MEMORY_MIB (OLLAMA_GPU_OVERHEAD) leaves TWO_GPU_FREE_MIB per GPU, so the
#          model does not fit one GPU; SPLIT_ENDPOINTS=1 adds A+B (both UUIDs, OLLAMA_SCHED_SPREAD=1):
#          partial offload on A, on B, and the split A+B for the same model, A and B in parallel
#          and A+B after them (it shares their GPUs)
# then writes OUT/two-gpu/summary.md (wall times from each run's run_summary line, rates per
# endpoint, where Ollama put the model) and `fuze compare` of seq against par (significance).
# Settings (environment): TWO_GPU_RUNS ("seq par split": which of the three to run; "" only sets
# up), TWO_GPU_LIMIT_SECS (600: a run still going then is interrupted with SIGINT, which keeps its
# rows), TWO_GPU_NG_PERCENT_SET ("100"), TWO_GPU_SPLIT_NG_PERCENT_SET ("100"),
# TWO_GPU_FREE_MIB (13312), TEST_PORT_B (11536), SPLIT_PORT (11538); BENCH_REPEAT,
# BENCH_NUM_PREDICT, BENCH_NUM_CTX and PROMPT as gpu-run.sh has them; the split run uses
# TWO_GPU_SPLIT_NUM_PREDICT (32) and TWO_GPU_SPLIT_REPEAT (5: 3 against 3 can never reach
# p ≤ 0.05) instead, because partial offload
# decodes at CPU speed: with 10240 MiB free per H200 (about half of the 8B F16 on the CPU), A and B
# at once and a compiler on the same cores, the two-H200 host decoded 0.4 tok/s; with 13312 MiB
# free (26 of 33 layers on the GPU) on an idle host, 17.7 tok/s. The split run
# therefore measures its endpoints one after the other (PARALLEL_ENDPOINTS=0): two partial
# offloads at once would share the host's cores and memory bandwidth, which is the CPU part's
# whole speed. Run it on an otherwise idle host.
# Uses gpu-run.sh's variables and functions: FUZE OLLAMA STORE WORK OUT_DIR LOGS MODELS
# PERSISTENT_PORT TEST_PORT_A say die bundle root.

two_model="${MODELS%% *}"
TEST_PORT_B="${TEST_PORT_B:-11536}"
SPLIT_PORT="${SPLIT_PORT:-11538}"
TWO_GPU_FREE_MIB="${TWO_GPU_FREE_MIB:-13312}"
TWO_GPU_SPLIT_NUM_PREDICT="${TWO_GPU_SPLIT_NUM_PREDICT:-32}"
TWO_GPU_SPLIT_REPEAT="${TWO_GPU_SPLIT_REPEAT:-5}"
TWO_GPU_NG_PERCENT_SET="${TWO_GPU_NG_PERCENT_SET:-100}"
TWO_GPU_SPLIT_NG_PERCENT_SET="${TWO_GPU_SPLIT_NG_PERCENT_SET:-100}"
TWO_GPU_RUNS="${TWO_GPU_RUNS-seq par split}"
TWO_GPU_LIMIT_SECS="${TWO_GPU_LIMIT_SECS:-600}"
two_out="$OUT_DIR/two-gpu"
mkdir -p "$two_out"

n_gpus="$(nvidia-smi --query-gpu=uuid --format=csv,noheader | grep -c '^GPU-' || true)"
[[ "$n_gpus" -ge 2 ]] || die "TWO_GPU=1 needs two GPUs; nvidia-smi lists $n_gpus"
total_mib="$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -n 1 | tr -dc 0-9)"
reserve_mib=$(( total_mib - TWO_GPU_FREE_MIB ))
nvidia-smi topo -m >"$two_out/nvidia-smi-topo.txt" 2>&1 || true

# two_run NAME EXTRA_ENV...: one `fuze stack ollama` run; its CSV, JSONL, console and the test
# daemons' loader lines go to two_out as NAME.*.
two_run() {
  local name="$1"; shift
  local logdir="$LOGS/two-$name" envf="$WORK/two-$name.env" console="$two_out/$name.console.txt" rc kv
  rm -rf "$logdir"; mkdir -p "$logdir"
  {
    echo "# fuze stack @$(basename "$envf") ollama — written by scripts/gpu-two.sh"
    echo "PERSISTENT_PORT=$PERSISTENT_PORT"
    echo "TEST_PORT_A=$TEST_PORT_A"
    echo "TEST_PORT_B=$TEST_PORT_B"
    echo "SPLIT_PORT=$SPLIT_PORT"
    echo "SKIP_TEST_UNITS=0"
    echo "OLLAMA_BIN=$OLLAMA"
    echo "OLLAMA_MODELS_DIR=$STORE"
    echo "LOG_DIR=$logdir"
    echo "INCLUDE_MODELS='^fuze-$two_model:latest\$'"
    echo "FAST_MODE=1"
    echo "AUTO_NG=1"
    echo "EXHAUSTIVE=1"
    echo "ZERO_TOKPS_BREAK=0"
    echo "NO_IMPROVE_LIMIT=0"
    echo "BENCH_NUM_PREDICT=$BENCH_NUM_PREDICT"
    echo "BENCH_REPEAT=$BENCH_REPEAT"
    echo "BENCH_NUM_CTX=$BENCH_NUM_CTX"
    echo "PROMPT=\"$PROMPT\""
    echo "TEMPERATURE=0.0"
    echo "TIMEOUT_GEN=600"
    echo "WAIT_API_SECS=120"
    echo "PUBLISH_BEST=0"
    echo "GC_AFTER_RUN=0"
    echo "TELEMETRY=1"
    echo "VERBOSE=1"
    for kv in "$@"; do echo "$kv"; done
  } >"$envf"
  cp "$envf" "$two_out/$name.env"
  say "two GPUs, $name: fuze stack @$envf ollama ($*)"
  set +e
  (cd "$root" && exec timeout -s INT -k 30 "$TWO_GPU_LIMIT_SECS" "$FUZE" stack "@$envf" ollama) 2>&1 | tee "$console"
  rc=${PIPESTATUS[0]}
  set -e
  local csv
  csv="$(ls -t "$logdir"/ollama_bench_*.csv 2>/dev/null | head -n 1 || true)"
  [[ -n "$csv" ]] || die "fuze wrote no run CSV for the $name run (exit $rc)"
  cp "$csv" "$two_out/$name.csv"
  cp "${csv%.csv}.jsonl" "$two_out/$name.jsonl"
  for l in "$logdir"/ollama_*_*.log; do
    [[ -f "$l" ]] || continue
    { echo "# $(basename "$l"): devices, offload and load lines"
      grep -E 'inference compute|offload|offloaded|load_tensors|model weights|msg="load|OLLAMA_SCHED_SPREAD|OLLAMA_GPU_OVERHEAD|CUDA_VISIBLE_DEVICES' "$l" | tail -n 80
    } >"$two_out/$name.$(basename "${l%.log}").txt"
  done
  [[ $rc == 0 ]] || echo "!! fuze stack exited $rc for the $name run" | tee -a "$two_out/skipped.txt"
  bundle
}

wants_run() { [[ " $TWO_GPU_RUNS " == *" $1 "* ]]; }
wants_run seq && two_run seq "PARALLEL_ENDPOINTS=0" "SPLIT_ENDPOINTS=0" "NG_PERCENT_SET=\"$TWO_GPU_NG_PERCENT_SET\""
wants_run par && two_run par "PARALLEL_ENDPOINTS=1" "SPLIT_ENDPOINTS=0" "NG_PERCENT_SET=\"$TWO_GPU_NG_PERCENT_SET\""
wants_run split && two_run split "PARALLEL_ENDPOINTS=0" "SPLIT_ENDPOINTS=1" "RESERVE_GPU_MEMORY_MIB=$reserve_mib" "NG_PERCENT_SET=\"$TWO_GPU_SPLIT_NG_PERCENT_SET\"" \
  "BENCH_NUM_PREDICT=$TWO_GPU_SPLIT_NUM_PREDICT" "BENCH_REPEAT=$TWO_GPU_SPLIT_REPEAT"

say "two GPUs: summary"
set +e
"$FUZE" compare "$two_out/seq.csv" "$two_out/par.csv" >"$two_out/compare-seq-par.txt" 2>&1
set -e
python3 - "$two_out" "$reserve_mib" <<'EOF' | tee "$two_out/summary.md"
import json, os, sys, statistics
out, reserve = sys.argv[1], int(sys.argv[2])
def load(name):
    recs, summary = [], None
    for line in open(os.path.join(out, name + ".jsonl")):
        if not line.strip():
            continue
        d = json.loads(line)
        if "run_summary" in d:
            summary = d["run_summary"]
        else:
            recs.append(d)
    return recs, summary
walls = {}
for name in ("seq", "par", "split"):
    if not os.path.exists(os.path.join(out, name + ".jsonl")):
        continue
    recs, s = load(name)
    print("\n### %s\n" % name)
    if s:
        walls[name] = s["wall_s"]
        print("wall time %.1f s (%s): %s\n" % (s["wall_s"], "parallel" if s["parallel"] else "sequential",
              ", ".join("[%s] %.1f s on %s" % (e["suffix"], e["wall_s"], e.get("gpu_uuid") or e["gpu_label"]) for e in s["endpoints"])))
    print("| endpoint | gpu_label | gpu_uuid | label | num_gpu | tok/s (median) | repeats | roofline share | VRAM / model bytes | outcome |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in recs:
        row, smp = r["row"], r.get("sample") or {}
        st = smp.get("settings") or {}
        rep = smp.get("repeat_tps") or []
        print("| %s | %s | %s | %s | %s | %.2f | %s | %s | %s / %s | %s %s |" % (
            row["suffix"], row["gpu_label"], row["gpu_uuid"], row["variant_label"], row["num_gpu"], row["tokens_per_sec"],
            " ".join("%.1f" % x for x in rep), "%.3f" % smp["roofline_share"] if smp.get("roofline_share") else "-",
            st.get("vram_bytes", "?"), st.get("model_bytes", "?"), smp.get("outcome", ""), smp.get("error", "")))
if "seq" in walls and "par" in walls and walls["seq"] > 0:
    print("\nparallel / sequential wall time: %.1f / %.1f s = %.2f (target ≤ 0.6)" % (walls["par"], walls["seq"], walls["par"] / walls["seq"]))
print("\nsplit run: RESERVE_GPU_MEMORY_MIB=%d (OLLAMA_GPU_OVERHEAD=%d bytes per GPU)" % (reserve, reserve << 20))
EOF
bundle
