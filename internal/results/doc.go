// Package results owns the files one benchmark run leaves in LOG_DIR: the per-run CSV (the
// seed's 16-column schema, one row per measured attempt), the JSONL of raw samples written
// beside it, the resolution of LOG_DIR itself, and a tolerant reader for run CSVs written by
// this program or by the original bash scripts.
//
// # Run CSV
//
// File name: <LOG_DIR>/<prefix>_bench_<YYYYmmdd_HHMMSS>.csv, prefix ollama, vllm, llamacpp or
// triton. The header is [Header]; every data row has exactly 16 fields (the original's vLLM,
// llama.cpp and Triton scripts wrote 17, with a trailing empty field). Fields are written with
// encoding/csv, so a value containing a comma or quote is quoted. The same columns for every stack:
//
//	 #  column          meaning
//	 1  ts              when the row was measured: RFC 3339 with numeric offset, second precision
//	                    (2025-09-14T03:00:47+00:00), the same format for all stacks
//	 2  endpoint        host:port the request went to (127.0.0.1:11435)
//	 3  unit            who ran the server: a systemd unit (ollama-test-a.service,
//	                    ollama-persist.service), "proc" for a process this program started, or empty
//	 4  suffix          which GPU slot: A, B, X (neither), or the port for other Ollama endpoints
//	 5  base_model      the model being optimised: an Ollama tag (gemma3:4b-it-fp16) or the
//	                    stack's alias for it
//	 6  variant_label   base-as-is (stack defaults), optimized (a swept setting) or published
//	                    (a baked/published variant)
//	 7  model_tag       what was actually requested/served: the base tag, <variant>:latest, a
//	                    llama.cpp alias with -ngl suffix, an HF model id, a Triton model name
//	 8  num_gpu         the swept GPU-offload setting (Ollama num_gpu, llama.cpp -ngl); "default"
//	                    when the stack's own default was used; empty when not applicable
//	 9  num_ctx         context length requested, or "default"/"NA"/empty when not set
//	10  batch           batch size setting, or empty
//	11  num_predict     output tokens requested, or empty
//	12  tokens_per_sec  decode throughput, %.2f (see measure.Sample.DecodeTokensPerSec); 0.00 for a
//	                    failed attempt, which is still a row
//	13  gpu_label       normalised GPU label (nvidia-5090), empty if unknown
//	14  gpu_name        GPU name as nvidia-smi reports it, empty if unknown
//	15  gpu_uuid        GPU-… UUID the server was pinned to, empty if unknown
//	16  gpu_mem_mib     total GPU memory in MiB, no padding; empty if unknown
//
// Each row is flushed to the operating system as soon as it is written, so an interrupted run
// keeps every row measured so far.
//
// # JSONL
//
// <same base name>.jsonl holds one [Record] per CSV row: the row by column name, the full
// measure.Sample (null when the row has none), and the rates derived from the sample in one place
// (decode_tps, prefill_tps, e2e_tps, stream_decode_tps, ttft_ns; joules_per_token and
// joules_per_token_above_idle when the sample's telemetry measured the request window's energy,
// absent otherwise). The sample's "telemetry" object is measure.Telemetry: source
// (nvml-energy, power-integral, rapl), energy_j, power_integral_j, power_mean_w, power_peak_w,
// idle_power_w, sm_clock_mhz, mem_clock_mhz, util_gpu_pct, util_mem_pct, mem_peak_mib,
// throttle, and na (why the energy is missing).
//
// # Reading
//
// [ReadRunCSV] accepts the current format and the original's: 17-field rows with a trailing
// empty field, the 2025-09-13 Ollama rows with 15 fields, ts as RFC 3339 / `date -Iseconds` or as
// the compact local run timestamp YYYYmmdd_HHMMSS, and gpu_mem_mib with a leading space.
package results
