package telemetry

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stack"
)

// Defaults of Options.
const (
	DefaultInterval = 100 * time.Millisecond
	DefaultIdle     = time.Second
)

// Options configure a Hub. The zero value samples every 100 ms and measures no idle power.
type Options struct {
	// Interval is nvidia-smi's sampling period (-lms); 0: DefaultInterval.
	Interval time.Duration
	// Idle is how long a device's idle power is measured, once, just before its first window
	// (the servers are up and the model loaded and warmed up by then); 0: no idle power.
	Idle time.Duration
	// Capacity is how many samples a GPU's ring keeps; 0: an hour's worth (at least 1024).
	// A window longer than that keeps only its last samples, and says so.
	Capacity int
	// StopWait bounds how long a window's end waits for the first sample after it (the
	// request is already timed by then); 0: three intervals plus 200 ms.
	StopWait time.Duration
	// Command builds the nvidia-smi process (nil: exec.CommandContext); Runner runs
	// `nvidia-smi --help-query-gpu` (nil: gpu.ExecRunner with Command). Tests fake both.
	Command func(ctx context.Context, name string, args ...string) *exec.Cmd
	Runner  gpu.Runner
	// Powercap is where the RAPL counters are ("": DefaultPowercap).
	Powercap string
	// Now is the clock of the windows' edges (nil: time.Now); Sleep waits out the CPU's idle
	// span (nil: time.Sleep).
	Now   func() time.Time
	Sleep func(time.Duration)
	// Log receives one line per device when its sampling starts (nil: none).
	Log io.Writer
}

// Hub samples the devices behind endpoints: one nvidia-smi stream per GPU, the RAPL counters
// for the CPU. Its Start is the engine's Sampler. It is safe for concurrent use; Close stops
// the streams.
type Hub struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex
	gpus map[string]*gpuDevice
	cpu  cpuDevice
}

type gpuDevice struct {
	once       sync.Once
	uuid       string
	s          *stream
	na         string // why this GPU has no samples
	counter    energyCounter
	counterWhy string
	idle       *float64
	idleNote   string
}

type cpuDevice struct {
	once sync.Once
	r    *rapl
	na   string
	idle *float64
}

// New returns a Hub; nothing starts before the first window.
func New(opts Options) *Hub {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Capacity <= 0 {
		opts.Capacity = max(1024, int(time.Hour/opts.Interval))
	}
	if opts.StopWait <= 0 {
		opts.StopWait = 3*opts.Interval + 200*time.Millisecond
	}
	if opts.Command == nil {
		opts.Command = exec.CommandContext
	}
	if opts.Runner == nil {
		opts.Runner = gpu.ExecRunner{Command: opts.Command}
	}
	if opts.Powercap == "" {
		opts.Powercap = DefaultPowercap
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = time.Sleep
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{opts: opts, ctx: ctx, cancel: cancel, gpus: map[string]*gpuDevice{}}
}

// String says how the hub samples, for the run's log.
func (h *Hub) String() string {
	energy := "the power samples integrated over each window (this build has no NVML: -tags nvml reads the GPU's energy counter)"
	if EnergyBackend == "nvml" {
		energy = "NVML's total-energy counter at each window's edges, the power integral beside it"
	}
	idle := "no idle power"
	if h.opts.Idle > 0 {
		idle = fmt.Sprintf("idle power over %s before each device's first window", h.opts.Idle)
	}
	return fmt.Sprintf("nvidia-smi every %s per GPU; energy: %s; CPU: RAPL when readable; %s", h.opts.Interval, energy, idle)
}

// Start opens a window on ep's device (its GPU, else the CPU) and returns the function that
// closes it and returns its telemetry. A device's first window first starts its sampling and
// measures its idle power; after that, opening a window reads a clock (and NVML's counter)
// and closing it cuts the window's samples from the ring.
//
// A split endpoint opens a window on every GPU of its set (their samplers run anyway) and
// closes them into one: energy and power add up, memory too, clocks and utilisation are the
// GPUs' mean (Combine).
func (h *Hub) Start(ep stack.Endpoint) func() *measure.Telemetry {
	if gpus := ep.GPUs(); len(gpus) > 1 {
		stops := make([]func() *measure.Telemetry, len(gpus))
		for i, g := range gpus {
			stops[i] = h.Start(stack.Endpoint{Suffix: ep.Suffix, Addr: ep.Addr, Unit: ep.Unit, GPU: g})
		}
		return func() *measure.Telemetry {
			parts := make([]*measure.Telemetry, len(stops))
			for i, stop := range stops {
				parts[i] = stop()
			}
			return Combine(parts)
		}
	}
	switch {
	case ep.GPU != nil && ep.GPU.UUID != "":
		return h.startGPU(ep.GPU.UUID)
	case ep.GPU != nil:
		return na(ep.GPU.Name, "the GPU's UUID is unknown")
	default:
		return h.startCPU()
	}
}

func na(device, why string) func() *measure.Telemetry {
	return func() *measure.Telemetry { return &measure.Telemetry{Device: device, NA: why} }
}

// Close stops every nvidia-smi the hub started and waits for them.
func (h *Hub) Close() error {
	h.cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.gpus {
		if d.s != nil {
			select {
			case <-d.s.wait:
			case <-time.After(5 * time.Second):
			}
		}
	}
	return nil
}

func (h *Hub) startGPU(uuid string) func() *measure.Telemetry {
	h.mu.Lock()
	d := h.gpus[uuid]
	if d == nil {
		d = &gpuDevice{uuid: uuid}
		h.gpus[uuid] = d
	}
	h.mu.Unlock()
	d.once.Do(func() { h.openGPU(d) })
	if d.s == nil {
		return na(uuid, d.na)
	}
	var e0 uint64
	var cerr error
	if d.counter != nil {
		e0, cerr = d.counter.EnergyMJ()
	}
	t0 := h.now()
	return func() *measure.Telemetry {
		t1 := h.now()
		var e1 uint64
		if d.counter != nil && cerr == nil {
			e1, cerr = d.counter.EnergyMJ()
		}
		s := d.s
		s.waitFor(func() bool { last, ok := s.ring.last(); return ok && !last.T.Before(t1) }, h.opts.StopWait)
		s.mu.Lock()
		ps, lost := s.ring.around(t0, t1)
		s.mu.Unlock()
		tel := Summarize(ps, t0, t1, s.interval)
		tel.Device, tel.IdlePowerW = uuid, d.idle
		if lost {
			tel.Notes = append(tel.Notes, fmt.Sprintf("the window is longer than the %d samples kept: its start is missing", s.ring.len()))
		}
		if d.idleNote != "" {
			tel.Notes = append(tel.Notes, d.idleNote)
		}
		if why := s.ended(); why != "" && why != "stopped" {
			tel.Notes = append(tel.Notes, why)
			if tel.EnergyJ == nil {
				tel.NA = why
			}
		}
		switch {
		case d.counter == nil:
		case cerr != nil:
			tel.Notes = append(tel.Notes, cerr.Error()+": energy is the power integral")
		case e1 < e0:
			tel.Notes = append(tel.Notes, fmt.Sprintf("NVML's energy counter went back (%d → %d mJ): energy is the power integral", e0, e1))
		default:
			tel.PowerIntegralJ = tel.EnergyJ
			tel.EnergyJ = measure.F(float64(e1-e0) / 1000)
			tel.Source, tel.NA = measure.SourceNVMLEnergy, ""
			if w := tel.Window.Seconds(); w > 0 {
				tel.PowerMeanW = measure.F(*tel.EnergyJ / w)
			}
		}
		return &tel
	}
}

// openGPU starts uuid's stream, waits for its first sample, opens NVML's counter and
// measures the idle power.
func (h *Hub) openGPU(d *gpuDevice) {
	s, err := startStream(h.ctx, h.opts.Command, h.opts.Runner, d.uuid, h.opts.Interval, h.opts.Capacity, h.now)
	if err != nil {
		d.na = err.Error()
		fmt.Fprintf(h.opts.Log, "! telemetry %s: %s: energy n/a\n", d.uuid, d.na)
		return
	}
	if !s.waitFor(func() bool { return s.ring.total > 0 }, 15*time.Second) {
		d.na = s.ended()
		if d.na == "" {
			d.na = "no sample from nvidia-smi in 15 s"
		}
		fmt.Fprintf(h.opts.Log, "! telemetry %s: %s: energy n/a\n", d.uuid, d.na)
		return
	}
	d.s = s
	d.counter, d.counterWhy = openEnergyCounter(d.uuid)
	if h.opts.Idle > 0 {
		s.mu.Lock()
		first := s.ring.at(0).T
		s.mu.Unlock()
		end := first.Add(h.opts.Idle)
		full := s.waitFor(func() bool { last, _ := s.ring.last(); return !last.T.Before(end) }, h.opts.Idle+5*time.Second)
		s.mu.Lock()
		ps, _ := s.ring.around(first, end)
		s.mu.Unlock()
		p, havePower := medianPower(ps, first, end)
		if busy, haveUtil := medianUtil(ps, first, end); haveUtil && busy > idleBusyUtilPct {
			// Another process was using the GPU (a second client on the same server, say):
			// its draw is no idle power, and J/token above idle would be wrong with it.
			d.idleNote = fmt.Sprintf("idle power n/a: the GPU was %.0f%% busy (median) before the first window: another process was using it", busy)
		} else if havePower && full {
			d.idle = measure.F(p)
		} else {
			d.idleNote = fmt.Sprintf("idle power n/a: nvidia-smi gave no %s of samples before the first window", h.opts.Idle)
		}
	}
	energy := "power integral"
	if d.counter != nil {
		energy = "NVML energy counter (power integral beside it)"
	} else if d.counterWhy != "" {
		energy += " (" + d.counterWhy + ")"
	}
	idle := "n/a"
	if d.idle != nil {
		idle = fmt.Sprintf("%.1f W", *d.idle)
	}
	fmt.Fprintf(h.opts.Log, "Telemetry  : %s: nvidia-smi --query-gpu=%s -lms %d; energy: %s; idle %s\n",
		d.uuid, s.fields, s.interval.Milliseconds(), energy, idle)
}

func (h *Hub) startCPU() func() *measure.Telemetry {
	d := &h.cpu
	d.once.Do(func() { h.openCPU(d) })
	if d.r == nil {
		return na("cpu", d.na)
	}
	a, err := d.r.read()
	t0 := h.now()
	return func() *measure.Telemetry {
		t1 := h.now()
		tel := &measure.Telemetry{Device: "cpu", Window: t1.Sub(t0), IdlePowerW: d.idle}
		b, err2 := d.r.read()
		if err == nil {
			err = err2
		}
		if err != nil {
			tel.NA = "RAPL: " + err.Error()
			return tel
		}
		e := d.r.joules(a, b)
		tel.Source, tel.EnergyJ = measure.SourceRAPL, measure.F(e)
		if w := tel.Window.Seconds(); w > 0 {
			tel.PowerMeanW = measure.F(e / w)
		}
		return tel
	}
}

func (h *Hub) openCPU(d *cpuDevice) {
	r, err := openRAPL(h.opts.Powercap)
	if err != nil {
		d.na = "no NVIDIA GPU on this endpoint; " + err.Error()
		fmt.Fprintf(h.opts.Log, "Telemetry  : cpu: energy n/a (%s)\n", d.na)
		return
	}
	d.r = r
	if h.opts.Idle > 0 {
		a, err1 := r.read()
		t0 := h.now()
		h.opts.Sleep(h.opts.Idle)
		b, err2 := r.read()
		t1 := h.now()
		if err1 == nil && err2 == nil && t1.After(t0) {
			d.idle = measure.F(r.joules(a, b) / t1.Sub(t0).Seconds())
		}
	}
	idle := "n/a"
	if d.idle != nil {
		idle = fmt.Sprintf("%.1f W", *d.idle)
	}
	fmt.Fprintf(h.opts.Log, "Telemetry  : cpu: RAPL %d package counter(s) under %s; idle %s\n", len(r.domains), h.opts.Powercap, idle)
}

// now is the hub's clock without Go's monotonic reading: window edges are compared with
// nvidia-smi's timestamps, which are wall-clock times, so the window is measured on the
// same clock.
func (h *Hub) now() time.Time { return h.opts.Now().Round(0) }

// Combine is the telemetry of a GPU set from each GPU's window over the same span: energies,
// power integrals, mean, peak and idle powers and peak memory add up (the set draws them
// together; the peaks' sum bounds the set's peak from above), clocks and utilisation are the
// mean over the GPUs that report them, throttle reasons the union. Device lists the GPUs
// joined by "+". When any GPU has no energy the set has none: NA names why.
func Combine(parts []*measure.Telemetry) *measure.Telemetry {
	out := &measure.Telemetry{}
	var devices []string
	sum := func(dst **float64, v *float64, all *bool) {
		if v == nil {
			*all = false
			return
		}
		if *dst == nil {
			*dst = measure.F(0)
		}
		**dst += *v
	}
	energyAll, integralAll, meanAll, peakAll, idleAll := true, true, true, true, true
	means := map[string][]float64{}
	seen := map[string]bool{}
	var memPeak *int
	var mask uint64
	hasMask := false
	for _, p := range parts {
		if p == nil {
			energyAll = false
			continue
		}
		devices = append(devices, p.Device)
		out.Source = p.Source
		out.Window = max(out.Window, p.Window)
		out.Samples += p.Samples
		sum(&out.EnergyJ, p.EnergyJ, &energyAll)
		sum(&out.PowerIntegralJ, p.PowerIntegralJ, &integralAll)
		sum(&out.PowerMeanW, p.PowerMeanW, &meanAll)
		sum(&out.PowerPeakW, p.PowerPeakW, &peakAll)
		sum(&out.IdlePowerW, p.IdlePowerW, &idleAll)
		for name, v := range map[string]*float64{"sm": p.SMClockMHz, "mem": p.MemClockMHz, "util": p.UtilGPUPct, "utilmem": p.UtilMemPct} {
			if v != nil {
				means[name] = append(means[name], *v)
			}
		}
		if p.MemPeakMiB != nil {
			if memPeak == nil {
				memPeak = new(int)
			}
			*memPeak += *p.MemPeakMiB
		}
		if m, err := strconv.ParseUint(strings.TrimPrefix(p.ThrottleMask, "0x"), 16, 64); err == nil {
			mask |= m
			hasMask = true
		}
		for _, r := range p.Throttle {
			if !seen[r] {
				seen[r] = true
				out.Throttle = append(out.Throttle, r)
			}
		}
		if p.NA != "" {
			out.NA = strings.TrimPrefix(out.NA+"; "+p.Device+": "+p.NA, "; ")
		}
		for _, n := range p.Notes {
			out.Notes = append(out.Notes, p.Device+": "+n)
		}
	}
	out.Device = strings.Join(devices, stack.SplitSeparator)
	if hasMask {
		out.ThrottleMask = fmt.Sprintf("%#x", mask)
	}
	out.MemPeakMiB = memPeak
	// A partial sum would understate the set: no figure rather than a wrong one.
	for _, f := range []struct {
		dst **float64
		all bool
	}{{&out.EnergyJ, energyAll}, {&out.PowerIntegralJ, integralAll}, {&out.PowerMeanW, meanAll}, {&out.PowerPeakW, peakAll}, {&out.IdlePowerW, idleAll}} {
		if !f.all {
			*f.dst = nil
		}
	}
	if out.EnergyJ == nil {
		out.Source = ""
		if out.NA == "" {
			out.NA = "a GPU of the set has no energy"
		}
	}
	mean := func(vs []float64) *float64 {
		if len(vs) == 0 {
			return nil
		}
		t := 0.0
		for _, v := range vs {
			t += v
		}
		return measure.F(t / float64(len(vs)))
	}
	out.SMClockMHz, out.MemClockMHz, out.UtilGPUPct, out.UtilMemPct = mean(means["sm"]), mean(means["mem"]), mean(means["util"]), mean(means["utilmem"])
	return out
}
