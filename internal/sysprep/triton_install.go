package sysprep

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
)

// TritonInstallOptions configures TritonInstall.
type TritonInstallOptions struct {
	Host         Host
	HTTPA, HTTPB string // TRITON_HTTP_A, TRITON_HTTP_B (host:port; B may be empty)
	StartCmd     string // TRITON_START_CMD
	PerfAnalyzer string // TRITON_PERF_ANALYZER
	Out          io.Writer
}

// TritonInstall installs nothing: Triton Inference Server runs in NVIDIA's tritonserver
// container, which the user pulls with the backend (TensorRT-LLM, vLLM, Python) their model
// repository needs and starts, or has the benchmark start through TRITON_START_CMD. It prints
// the container runtime it finds and the command lines that serve TRITON_HTTP_A and
// TRITON_HTTP_B. That is the whole job of the command, so it is not an error.
func TritonInstall(ctx context.Context, o TritonInstallOptions) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	r := o.Host.runner()
	fmt.Fprintln(out, "Triton: nothing for fuze to install. Triton Inference Server runs in NVIDIA's tritonserver")
	fmt.Fprintln(out, "container (NGC image nvidia/tritonserver:<yy.mm>-<backend>-py3, e.g. -trtllm-python-py3 or -vllm-python-py3),")
	fmt.Fprintln(out, "which you pull and start with your model repository; fuze benchmarks the servers it finds at")
	fmt.Fprintf(out, "TRITON_HTTP_A=%s and TRITON_HTTP_B=%s.\n", o.HTTPA, orNone(o.HTTPB))

	runtime := ""
	for _, t := range []string{"docker", "podman"} {
		if p, err := r.LookPath(t); err == nil {
			runtime = t
			fmt.Fprintf(out, "✔ container runtime: %s\n", p)
			break
		}
	}
	if runtime == "" {
		runtime = "docker"
		fmt.Fprintln(out, "! no docker or podman on PATH: install one, with the NVIDIA Container Toolkit for GPU access")
	}
	if present, what := DetectNVIDIA(ctx, o.Host); !present {
		fmt.Fprintf(out, "! %s: Triton's LLM backends need one\n", what)
	}

	fmt.Fprintln(out, "\nStart the servers (replace <image> and <model_repository>):")
	for i, ep := range []string{o.HTTPA, o.HTTPB} {
		if ep == "" {
			continue
		}
		name := string(rune('a' + i))
		fmt.Fprintf(out, "  %s\n", tritonRunLine(runtime, name, i, ep))
	}
	if runtime == "podman" {
		fmt.Fprintln(out, "  (podman with the NVIDIA Container Toolkit's CDI: --device nvidia.com/gpu=N instead of --gpus)")
	}
	fmt.Fprintln(out, "Each container serves HTTP on its port 8000; only that port is published, so B's HTTP port does not")
	fmt.Fprintln(out, "collide with A's gRPC port 8001.")
	if o.StartCmd != "" {
		fmt.Fprintf(out, "TRITON_START_CMD is set: the benchmark runs it before measuring: %s\n", o.StartCmd)
	} else {
		fmt.Fprintln(out, "Or let the benchmark start them: TRITON_START_CMD='<the lines above, joined with &&>' (readiness: TRITON_READY_SECS).")
	}
	pa := o.PerfAnalyzer
	if pa == "" {
		pa = "perf_analyzer"
	}
	if p, err := r.LookPath(pa); err == nil {
		fmt.Fprintf(out, "✔ perf_analyzer: %s (inferences/sec, reported beside tokens/sec)\n", p)
	} else {
		fmt.Fprintln(out, "perf_analyzer (optional, inferences/sec): copy it out of the matching -py3-sdk image or pip install tritonclient, then set TRITON_PERF_ANALYZER.")
	}
}

// tritonRunLine is the container command line serving endpoint ep (host:port) on GPU gpu.
func tritonRunLine(runtime, name string, gpu int, ep string) string {
	host, port, err := net.SplitHostPort(ep)
	publish := ep + ":8000"
	switch {
	case err != nil:
		publish = "8000:8000"
	case host == "localhost" || host == "":
		publish = "127.0.0.1:" + port + ":8000"
	case net.ParseIP(host) == nil:
		publish = port + ":8000" // a host name: run this on that host
	}
	gpus := fmt.Sprintf(`--gpus '"device=%d"'`, gpu)
	if runtime == "podman" {
		gpus = fmt.Sprintf("--device nvidia.com/gpu=%d", gpu)
	}
	return strings.Join([]string{runtime, "run -d --rm --name fuze-triton-" + name, gpus, "--shm-size=1g",
		"-p " + publish, "-v <model_repository>:/models <image>",
		"tritonserver --model-repository=/models"}, " ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
