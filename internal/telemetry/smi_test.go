package telemetry

import (
	"math"
	"testing"
	"time"
)

// helpNew and helpOld are excerpts in the shape of `nvidia-smi --help-query-gpu`: each field
// quoted on its own line (with its aliases), then a description. The descriptions here are
// fuze's own words.
const (
	helpNew = `List of valid properties to query for the switch "--query-gpu=":

"timestamp"
When the query was made, as YYYY/MM/DD HH:MM:SS.msec.

"memory.used"
Memory in use on the device, in MiB.

"utilization.gpu"
Share of the last sample period with a kernel running.

"utilization.memory"
Share of the last sample period with device memory being read or written.

"clocks_event_reasons.active"
Bit mask of the reasons the clocks are held down.

"power.draw"
Board power; a one-second average on Ampere and newer.

"power.draw.average"
Board power averaged over one second.

"power.draw.instant"
Board power at the time of the query.

"clocks.current.sm" or "clocks.sm"
SM clock.

"clocks.current.memory" or "clocks.mem"
Memory clock.
`
	helpOld = `List of valid properties to query for the switch "--query-gpu=":

"timestamp"
When the query was made.

"memory.used"
Memory in use.

"utilization.gpu"
GPU utilisation.

"clocks_throttle_reasons.active"
Bit mask of throttle reasons.

"power.draw"
Board power.

"clocks.current.sm" or "clocks.sm"
SM clock.
`
)

func TestQueryFields(t *testing.T) {
	arg, cols := fieldList(queryFields([]byte(helpNew)))
	if arg != "timestamp,power.draw.instant,clocks.sm,clocks.mem,utilization.gpu,utilization.memory,memory.used,clocks_event_reasons.active" || len(cols) != numCols {
		t.Errorf("new driver: %s %v", arg, cols)
	}
	// An older driver: the averaged power (the only one it has), the old name of the reasons,
	// and no memory clock or memory utilisation.
	arg, cols = fieldList(queryFields([]byte(helpOld)))
	if arg != "timestamp,power.draw,clocks.sm,utilization.gpu,memory.used,clocks_throttle_reasons.active" || len(cols) != 6 || cols[3] != colUtilGPU {
		t.Errorf("old driver: %s %v", arg, cols)
	}
	if arg, _ := fieldList(fallbackFields); arg != "timestamp,power.draw,clocks.sm,clocks.mem,utilization.gpu,utilization.memory,memory.used" {
		t.Errorf("fallback %s", arg)
	}
}

func TestParseLine(t *testing.T) {
	_, cols := fieldList(queryFields([]byte(helpNew)))
	arrived := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	p, ok := parseLine("2030/01/02 03:04:05.250, 441.37, 1980, 2619, 97, 61, 17012, 0x0000000000000004", cols, arrived)
	want := time.Date(2030, 1, 2, 3, 4, 5, 250e6, time.Local)
	if !ok || !p.T.Equal(want) || p.PowerW != 441.37 || p.SMClockMHz != 1980 || p.MemClockMHz != 2619 ||
		p.UtilGPU != 97 || p.UtilMem != 61 || p.MemUsedMiB != 17012 || !p.HasReasons || p.Reasons != 4 {
		t.Fatalf("%+v %v", p, ok)
	}
	// Readings the GPU does not give are NaN, not 0; a missing timestamp is the arrival time.
	p, ok = parseLine("[N/A], [N/A], 1410, [Not Supported], 0, N/A, 300, [N/A]", cols, arrived)
	if !ok || !p.T.Equal(arrived) || !math.IsNaN(p.PowerW) || p.SMClockMHz != 1410 || !math.IsNaN(p.MemClockMHz) ||
		p.UtilGPU != 0 || !math.IsNaN(p.UtilMem) || p.MemUsedMiB != 300 || p.HasReasons {
		t.Fatalf("%+v %v", p, ok)
	}
	for _, bad := range []string{
		"No devices were found",
		"Failed to initialize NVML: Driver/library version mismatch",
		"",
		"2030/01/02 03:04:05.250, 441.37, 1980",
		"2030/01/02 03:04:05.250, lots, 1980, 2619, 97, 61, 17012, 0x4",
		"[N/A], [N/A], [N/A], [N/A], [N/A], [N/A], [N/A], [N/A]",
	} {
		if p, ok := parseLine(bad, cols, arrived); ok {
			t.Errorf("%q parsed as %+v", bad, p)
		}
	}
}
