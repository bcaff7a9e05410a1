package bench

import (
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/telemetry"
)

// fakeSMIScript is a stand-in nvidia-smi: its field list for --help-query-gpu, else a sample
// stamped with the current time every 10 ms (ten times fuze's default rate) until killed.
const fakeSMIScript = `#!/bin/sh
if [ "$1" = "--help-query-gpu" ]; then
  printf '"timestamp"\n"power.draw.instant"\n"clocks.sm"\n"clocks.mem"\n"utilization.gpu"\n"utilization.memory"\n"memory.used"\n"clocks_event_reasons.active"\n'
  exit 0
fi
while :; do
  echo "$(date '+%Y/%m/%d %H:%M:%S.%3N'), 250.00, 1980, 2619, 90, 50, 17012, 0x0000000000000000"
  sleep 0.01
done
`

// request stands for the span the engine times: a fixed piece of work (a few milliseconds).
func request() {
	buf := make([]byte, 1<<16)
	for range 40 {
		s := sha256.Sum256(buf)
		buf[0] = s[0]
	}
}

// The sampler adds no measurable time to a window: the engine opens the window before it
// starts a request's clock and closes it after the clock stops, so the timed span only
// shares the machine with nvidia-smi's stream (one line per interval, parsed into a ring).
// "timed-µs" is the span of the same work with no sampler and inside a window of a live one;
// "open-ns" what opening a window costs (a clock read), before the span.
func BenchmarkTelemetryWindow(b *testing.B) {
	script := filepath.Join(b.TempDir(), "nvidia-smi")
	if err := os.WriteFile(script, []byte(fakeSMIScript), 0o755); err != nil {
		b.Fatal(err)
	}
	b.Run("no-sampler", func(b *testing.B) {
		var timed time.Duration
		for i := 0; i < b.N; i++ {
			t := time.Now()
			request()
			timed += time.Since(t)
		}
		b.ReportMetric(float64(timed.Nanoseconds())/float64(b.N)/1000, "timed-µs")
	})
	h := telemetry.New(telemetry.Options{Interval: 10 * time.Millisecond, StopWait: 50 * time.Millisecond,
		Command: func(ctx context.Context, _ string, args ...string) *exec.Cmd {
			return exec.CommandContext(ctx, script, args...)
		}})
	defer h.Close()
	ep := stack.Endpoint{Addr: "127.0.0.1:1", GPU: &gpu.GPU{Name: "fake", UUID: "GPU-bench"}}
	if tel := h.Start(ep)(); tel.EnergyJ == nil { // starts the stream
		b.Fatalf("the fake nvidia-smi gave no energy: %+v", tel)
	}
	b.Run("in-window", func(b *testing.B) {
		var timed, open time.Duration
		for i := 0; i < b.N; i++ {
			o := time.Now()
			stop := h.Start(ep)
			open += time.Since(o)
			t := time.Now()
			request()
			timed += time.Since(t)
			b.StopTimer()
			if tel := stop(); tel.EnergyJ == nil {
				b.Fatalf("window without energy: %+v", tel)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(timed.Nanoseconds())/float64(b.N)/1000, "timed-µs")
		b.ReportMetric(float64(open.Nanoseconds())/float64(b.N), "open-ns")
	})
}
