package telemetry

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stack"
)

const uuid = "GPU-a1b2c3d4-e5f6-a7b8-c9d0-e1f2a3b4c5d6"

var gpuEP = stack.Endpoint{Suffix: "A", Addr: "127.0.0.1:11435", Unit: "proc", GPU: &gpu.GPU{Name: "NVIDIA H200", UUID: uuid}}

// TestHelperNvidiaSMI is not a test: it is the fake nvidia-smi that fakeSMI runs. It answers
// --help-query-gpu with a driver's field list and a --query-gpu … -lms stream with the lines
// of FUZE_SMI_LINES (then waits to be killed, as the real one samples until it is), or, in
// "live" mode, a 250 W line stamped with the current time every -lms milliseconds.
func TestHelperNvidiaSMI(t *testing.T) {
	mode, ok := os.LookupEnv("FUZE_SMI_MODE")
	if !ok {
		return
	}
	argv := os.Args
	for len(argv) > 0 && argv[0] != "--" {
		argv = argv[1:]
	}
	argv = argv[1:]
	if f := os.Getenv("FUZE_SMI_ARGV"); f != "" {
		out, _ := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		fmt.Fprintln(out, strings.Join(argv, " "))
		out.Close()
	}
	if slices.Equal(argv, []string{"nvidia-smi", "--help-query-gpu"}) {
		switch mode {
		case "oldhelp":
			fmt.Print(helpOld)
		case "nohelp":
			fmt.Fprintln(os.Stderr, "Invalid combination of input arguments.")
			os.Exit(2)
		default:
			fmt.Print(helpNew)
		}
		os.Exit(0)
	}
	if len(argv) != 7 || argv[0] != "nvidia-smi" || !strings.HasPrefix(argv[1], "--query-gpu=") ||
		argv[2] != "--format=csv,noheader,nounits" || argv[3] != "-lms" || argv[5] != "-i" {
		fmt.Fprintf(os.Stderr, "fake nvidia-smi: unexpected arguments %q\n", argv)
		os.Exit(2)
	}
	switch mode {
	case "nodevices":
		fmt.Println("No devices were found")
		os.Exit(6)
	case "live":
		ms, _ := strconv.Atoi(argv[4])
		for {
			fmt.Printf("%s, 250.00, 1980, 2619, 90, 50, 17012, 0x0000000000000000\n", time.Now().Format(smiTimeLayout))
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
	default:
		fmt.Print(os.Getenv("FUZE_SMI_LINES"))
		time.Sleep(time.Hour)
	}
}

// fakeSMI is a Command that runs the test binary as nvidia-smi in mode, streaming lines.
func fakeSMI(t *testing.T, mode, lines string) (cmd func(context.Context, string, ...string) *exec.Cmd, argvFile string) {
	argvFile = t.TempDir() + "/argv"
	return func(ctx context.Context, name string, args ...string) *exec.Cmd {
		c := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^TestHelperNvidiaSMI$", "--", name}, args...)...)
		c.Env = append(os.Environ(), "FUZE_SMI_MODE="+mode, "FUZE_SMI_LINES="+lines, "FUZE_SMI_ARGV="+argvFile)
		return c
	}, argvFile
}

// scriptLines are 100 ms samples from t0 (see at): 100 W at rest for the first 500 ms (one
// 130 W blip, utilisation 0% up to 500 ms unless restBusy), then P(t) = 400 W + 0.1 W per ms
// after 600 ms at 97%, 17012 MiB in use (17500 at 700 ms), the power cap active at 1000 ms.
func scriptLines() string { return scriptLinesRest(false) }

func scriptLinesRest(restBusy bool) string {
	var b strings.Builder
	for ms := 0; ms <= 2000; ms += 100 {
		util := 97
		if ms <= 500 && !restBusy {
			util = 0
		}
		w := 100.0
		if ms == 200 {
			w = 130
		}
		if ms >= 600 {
			w = 400 + 0.1*float64(ms-600)
		}
		mem, reasons := 17012, "0x0000000000000000"
		if ms == 700 {
			mem = 17500
		}
		if ms == 1000 {
			reasons = "0x0000000000000004"
		}
		fmt.Fprintf(&b, "%s, %.2f, 1980, 2619, %d, 61, %d, %s\n", at(ms).Format(smiTimeLayout), w, util, mem, reasons)
	}
	return b.String()
}

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func window(h *Hub, c *clock, ep stack.Endpoint, from, to time.Time) *measure.Telemetry {
	c.set(from)
	stop := h.Start(ep)
	c.set(to)
	return stop()
}

// The whole path through a real process: nvidia-smi's fields chosen from its help, its
// stream parsed into the ring, the idle power measured before the first window, the windows
// cut by their timestamps and integrated exactly.
func TestHubScriptedNvidiaSMI(t *testing.T) {
	cmd, argvFile := fakeSMI(t, "script", scriptLines())
	c := &clock{}
	var log strings.Builder
	h := New(Options{Command: cmd, Idle: 500 * time.Millisecond, Now: c.now, Log: &log, StopWait: 50 * time.Millisecond})
	defer h.Close()

	tel := window(h, c, gpuEP, at(750), at(1250))
	// P(750 ms) = 415 W, P(1250 ms) = 465 W: 0.5 s × 440 W.
	if tel.Source != measure.SourcePowerIntegral || tel.Device != uuid || tel.Window != 500*time.Millisecond || tel.Samples != 5 {
		t.Fatalf("%+v", tel)
	}
	if !near(*tel.EnergyJ, 220) || !near(*tel.PowerMeanW, 440) || !near(*tel.PowerPeakW, 460) {
		t.Errorf("energy %v J, mean %v W, peak %v W; want 220, 440, 460", *tel.EnergyJ, *tel.PowerMeanW, *tel.PowerPeakW)
	}
	if tel.IdlePowerW == nil || *tel.IdlePowerW != 100 {
		t.Errorf("idle %v, want the median 100 W of the first 500 ms", tel.IdlePowerW)
	}
	if *tel.MemPeakMiB != 17500 || *tel.SMClockMHz != 1980 || *tel.MemClockMHz != 2619 || *tel.UtilGPUPct != 97 || *tel.UtilMemPct != 61 {
		t.Errorf("mem %v sm %v memclk %v util %v/%v", *tel.MemPeakMiB, *tel.SMClockMHz, *tel.MemClockMHz, *tel.UtilGPUPct, *tel.UtilMemPct)
	}
	if !slices.Equal(tel.Throttle, []string{"sw_power_cap"}) || tel.PowerIntegralJ != nil || len(tel.Notes) != 0 {
		t.Errorf("throttle %v integral %v notes %q", tel.Throttle, tel.PowerIntegralJ, tel.Notes)
	}
	// One process for the GPU, however many windows; asked for the new driver's fields.
	for range 3 {
		window(h, c, gpuEP, at(1300), at(1400))
	}
	b, _ := os.ReadFile(argvFile)
	want := "nvidia-smi --help-query-gpu\n" +
		"nvidia-smi --query-gpu=timestamp,power.draw.instant,clocks.sm,clocks.mem,utilization.gpu,utilization.memory,memory.used,clocks_event_reasons.active --format=csv,noheader,nounits -lms 100 -i " + uuid + "\n"
	if string(b) != want {
		t.Errorf("ran\n%s\nwant\n%s", b, want)
	}
	if !strings.Contains(log.String(), "Telemetry  : "+uuid+": nvidia-smi --query-gpu=timestamp,power.draw.instant") || !strings.Contains(log.String(), "idle 100.0 W") {
		t.Errorf("log %q", log.String())
	}
}

// A GPU that another process keeps busy while fuze reads its idle power (a second client on
// the same server, say) has no idle power: n/a, with the reason in the window's notes.
func TestHubIdlePowerOfABusyGPU(t *testing.T) {
	cmd, _ := fakeSMI(t, "script", scriptLinesRest(true))
	c := &clock{}
	var log strings.Builder
	h := New(Options{Command: cmd, Idle: 500 * time.Millisecond, Now: c.now, Log: &log, StopWait: 50 * time.Millisecond})
	defer h.Close()
	tel := window(h, c, gpuEP, at(750), at(1250))
	if tel.IdlePowerW != nil {
		t.Errorf("idle %v W of a GPU 97%% busy", *tel.IdlePowerW)
	}
	if len(tel.Notes) != 1 || !strings.Contains(tel.Notes[0], "97% busy") || !strings.Contains(log.String(), "idle n/a") {
		t.Errorf("notes %q, log %q", tel.Notes, log.String())
	}
	if !near(*tel.EnergyJ, 220) {
		t.Errorf("energy %v J: the window is measured as ever", *tel.EnergyJ)
	}
}

// With NVML's counter (a fuze built with -tags nvml) the energy is the counter's, the power
// integral is kept beside it, and the mean power follows the counter.
func TestHubEnergyCounter(t *testing.T) {
	fc := &fakeCounter{mj: []uint64{5_000_000, 5_230_000}}
	defer swapCounter(func(string) (energyCounter, string) { return fc, "" })()
	cmd, _ := fakeSMI(t, "script", scriptLines())
	c := &clock{}
	h := New(Options{Command: cmd, Now: c.now, StopWait: 50 * time.Millisecond})
	defer h.Close()
	tel := window(h, c, gpuEP, at(750), at(1250))
	if tel.Source != measure.SourceNVMLEnergy || !near(*tel.EnergyJ, 230) || !near(*tel.PowerIntegralJ, 220) || !near(*tel.PowerMeanW, 460) {
		t.Fatalf("%+v", tel)
	}
	if tel.IdlePowerW != nil {
		t.Errorf("idle %v without an idle span", *tel.IdlePowerW)
	}
	// A counter that fails falls back to the power integral, saying why.
	fc.err = fmt.Errorf("NVML total energy: Not Supported")
	tel = window(h, c, gpuEP, at(750), at(1250))
	if tel.Source != measure.SourcePowerIntegral || !near(*tel.EnergyJ, 220) || len(tel.Notes) != 1 || !strings.Contains(tel.Notes[0], "Not Supported") {
		t.Errorf("%+v", tel)
	}
}

type fakeCounter struct {
	mu  sync.Mutex
	mj  []uint64
	err error
}

func (f *fakeCounter) EnergyMJ() (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	v := f.mj[0]
	if len(f.mj) > 1 {
		f.mj = f.mj[1:]
	}
	return v, nil
}

func swapCounter(open func(string) (energyCounter, string)) (restore func()) {
	old := openEnergyCounter
	openEnergyCounter = open
	return func() { openEnergyCounter = old }
}

// An older driver: its field names, and windows still integrate.
func TestHubOldDriverAndFallbackFields(t *testing.T) {
	for _, tc := range []struct{ mode, query string }{
		{"oldhelp", "timestamp,power.draw,clocks.sm,utilization.gpu,memory.used,clocks_throttle_reasons.active"},
		{"nohelp", "timestamp,power.draw,clocks.sm,clocks.mem,utilization.gpu,utilization.memory,memory.used"},
	} {
		var lines strings.Builder
		cols := strings.Count(tc.query, ",") + 1
		for ms := 0; ms <= 1000; ms += 100 {
			fields := []string{at(ms).Format(smiTimeLayout), "300.00"}
			for range cols - 2 {
				fields = append(fields, "1")
			}
			fmt.Fprintln(&lines, strings.Join(fields, ", "))
		}
		cmd, argvFile := fakeSMI(t, tc.mode, lines.String())
		c := &clock{}
		h := New(Options{Command: cmd, Now: c.now, StopWait: 50 * time.Millisecond})
		tel := window(h, c, gpuEP, at(200), at(600))
		h.Close()
		if tel.EnergyJ == nil || !near(*tel.EnergyJ, 120) {
			t.Errorf("%s: %+v", tc.mode, tel)
		}
		b, _ := os.ReadFile(argvFile)
		if !strings.Contains(string(b), "--query-gpu="+tc.query+" ") {
			t.Errorf("%s: ran %s", tc.mode, b)
		}
	}
}

// nvidia-smi that fails, or is not there: every window says n/a and why, and nothing is 0.
func TestHubWithoutSamples(t *testing.T) {
	cmd, _ := fakeSMI(t, "nodevices", "")
	h := New(Options{Command: cmd, Idle: time.Second})
	tel := h.Start(gpuEP)()
	h.Close()
	if tel.EnergyJ != nil || tel.PowerMeanW != nil || !strings.Contains(tel.NA, "No devices were found") || tel.Device != uuid {
		t.Errorf("%+v", tel)
	}

	t.Setenv("PATH", t.TempDir())
	h = New(Options{})
	defer h.Close()
	if tel := h.Start(gpuEP)(); tel.EnergyJ != nil || tel.NA != "nvidia-smi not found" {
		t.Errorf("without nvidia-smi: %+v", tel)
	}
	if tel := h.Start(stack.Endpoint{GPU: &gpu.GPU{Name: "NVIDIA X"}})(); tel.EnergyJ != nil || tel.NA == "" {
		t.Errorf("GPU without UUID: %+v", tel)
	}
}

// A window longer than the ring keeps its last samples and says its start is missing.
func TestHubWindowLongerThanTheRing(t *testing.T) {
	cmd, _ := fakeSMI(t, "script", scriptLines())
	c := &clock{}
	h := New(Options{Command: cmd, Now: c.now, Capacity: 4, StopWait: 50 * time.Millisecond})
	defer h.Close()
	tel := window(h, c, gpuEP, at(100), at(1900))
	if !slices.ContainsFunc(tel.Notes, func(n string) bool { return strings.Contains(n, "longer than the 4 samples kept") }) {
		t.Errorf("notes %q", tel.Notes)
	}
}

// A live stream on the real clock: a constant 250 W board gives 250 W over any window,
// whatever the machine's scheduling does to the window's length; Close stops the process.
func TestHubLiveStream(t *testing.T) {
	cmd, _ := fakeSMI(t, "live", "")
	h := New(Options{Command: cmd, Interval: 10 * time.Millisecond})
	stop := h.Start(gpuEP)
	time.Sleep(100 * time.Millisecond)
	tel := stop()
	if tel.EnergyJ == nil || math.Abs(*tel.PowerMeanW-250) > 1e-6 || *tel.PowerPeakW != 250 || tel.Samples < 1 {
		t.Fatalf("%+v: mean %v W, peak %v W", tel, *tel.PowerMeanW, *tel.PowerPeakW)
	}
	if math.Abs(*tel.EnergyJ-250*tel.Window.Seconds()) > 1e-6 {
		t.Errorf("energy %v over %v", *tel.EnergyJ, tel.Window)
	}
	h.Close()
	d := h.gpus[uuid]
	select {
	case <-d.s.wait:
	default:
		t.Error("nvidia-smi still running after Close")
	}
}
