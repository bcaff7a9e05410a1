package telemetry

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stack"
)

// powercap lays out a fake /sys/class/powercap: two packages, a core subdomain and psys
// (both left out), each counter wrapping at 1000 J.
func powercap(t *testing.T) (root string, set func(pkg0, pkg1 uint64)) {
	root = t.TempDir()
	dom := func(name, label string, uj uint64) {
		d := filepath.Join(root, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "name"), []byte(label+"\n"), 0o644)
		os.WriteFile(filepath.Join(d, "max_energy_range_uj"), []byte("1000000000\n"), 0o644)
		os.WriteFile(filepath.Join(d, "energy_uj"), []byte(fmt.Sprintf("%d\n", uj)), 0o644)
	}
	dom("intel-rapl:0", "package-0", 0)
	dom("intel-rapl:1", "package-1", 0)
	dom("intel-rapl:0:0", "core", 777)
	dom("intel-rapl:2", "psys", 999)
	set = func(pkg0, pkg1 uint64) {
		os.WriteFile(filepath.Join(root, "intel-rapl:0", "energy_uj"), []byte(fmt.Sprintf("%d\n", pkg0)), 0o644)
		os.WriteFile(filepath.Join(root, "intel-rapl:1", "energy_uj"), []byte(fmt.Sprintf("%d\n", pkg1)), 0o644)
	}
	return root, set
}

func TestRAPLWindow(t *testing.T) {
	root, set := powercap(t)
	set(10_000_000, 20_000_000)
	c := &clock{t: at(0)}
	var log strings.Builder
	// The idle span: 1 s during which the packages draw 30 W together.
	sleep := func(d time.Duration) {
		c.set(c.now().Add(d))
		set(25_000_000, 35_000_000)
	}
	h := New(Options{Powercap: root, Now: c.now, Sleep: sleep, Idle: time.Second, Log: &log})
	defer h.Close()
	ep := stack.Endpoint{Addr: "127.0.0.1:11435"}
	h.Start(ep)() // the CPU's first window measures its idle span first
	// The window under test, 0.5 s: package 0 wraps (990 J → 5 J: 15 J), package 1 uses 45 J.
	set(990_000_000, 35_000_000)
	c.set(at(3000))
	stop := h.Start(ep)
	set(5_000_000, 80_000_000)
	c.set(at(3500))
	tel := stop()
	if tel.Source != measure.SourceRAPL || tel.Device != "cpu" || tel.Window != 500*time.Millisecond {
		t.Fatalf("%+v", tel)
	}
	if !near(*tel.EnergyJ, 60) || !near(*tel.PowerMeanW, 120) {
		t.Errorf("energy %v J mean %v W, want 60 J (15 J across the wrap + 45 J), 120 W", *tel.EnergyJ, *tel.PowerMeanW)
	}
	if tel.IdlePowerW == nil || !near(*tel.IdlePowerW, 30) {
		t.Errorf("idle %v, want 30 W", tel.IdlePowerW)
	}
	if tel.PowerPeakW != nil || tel.MemPeakMiB != nil || tel.SMClockMHz != nil {
		t.Errorf("RAPL measures energy only: %+v", tel)
	}
	if !strings.Contains(log.String(), "cpu: RAPL 2 package counter(s)") {
		t.Errorf("log %q", log.String())
	}
}

// Where RAPL is missing or unreadable the CPU's energy is n/a, with the reason.
func TestRAPLUnavailable(t *testing.T) {
	for name, setup := range map[string]func(root string){
		"no powercap": func(string) {},
		// energy_uj readable only by root is the usual case; a directory in its place fails
		// the read the same way whoever runs the test.
		"unreadable": func(root string) {
			d := filepath.Join(root, "intel-rapl:0")
			os.MkdirAll(filepath.Join(d, "energy_uj"), 0o755)
			os.WriteFile(filepath.Join(d, "name"), []byte("package-0\n"), 0o644)
		},
	} {
		root := t.TempDir()
		setup(root)
		h := New(Options{Powercap: root, Idle: time.Second})
		tel := h.Start(stack.Endpoint{Addr: "127.0.0.1:11435"})()
		h.Close()
		if tel.EnergyJ != nil || tel.PowerMeanW != nil || tel.IdlePowerW != nil || tel.Device != "cpu" || !strings.Contains(tel.NA, "no NVIDIA GPU on this endpoint") {
			t.Errorf("%s: %+v", name, tel)
		}
	}
}
