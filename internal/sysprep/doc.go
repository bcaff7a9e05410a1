// Package sysprep prepares and inspects the machine fuze benchmarks on: preflight (what is
// installed and running), gpu-prepare (NVIDIA driver and CUDA toolkit through apt),
// migrate-logs (legacy log folders into LOG_DIR), service-cleanup (exactly one persistent
// Ollama daemon) and install (Ollama itself, then service-cleanup).
//
// Every external program (systemctl, apt-get, apt-cache, dpkg-query, nvidia-smi, nvcc, the
// stacks' binaries) runs through a Runner, and every system path it reads (/sys/bus/pci,
// /etc/os-release, /run/systemd/system, the unit directory) is a field of Host, so tests run
// the commands against fakes. Commands that change the system need root, say so when run
// without it, and have a dry-run mode that prints what they would do.
//
// Service rule (install and service-cleanup agree on it): when systemd runs and fuze runs as
// root, the persistent daemon is fuze's own unit ollama-persist.service (its Environment
// lines carry OLLAMA_MODELS and OLLAMA_HOST); the packaged ollama.service that the official
// installer creates is stopped and disabled, and the original's test units
// ollama-test-a/-b.service are removed. Otherwise fuze starts `ollama serve` detached in its
// own session and records it in ollama-persist.pid (log in ollama-persist.log) in LOG_DIR;
// a later run keeps that daemon. A listener that fuze does not own is never killed on the
// persistent port; on the test ports only Ollama processes are stopped.
package sysprep
