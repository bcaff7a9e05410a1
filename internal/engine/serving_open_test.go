package engine

import (
	"context"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fuze-ai/fuze/internal/serving"
	"github.com/fuze-ai/fuze/internal/stack/scripted"
)

// requestStarts are the measured requests' start times of a run's JSONL, in issue order, as
// offsets from the first.
func requestStarts(t *testing.T, r servedRun) []time.Duration {
	t.Helper()
	var out []time.Duration
	var first time.Time
	for _, m := range r.ofType("request") {
		if m["warmup"] == true {
			continue
		}
		s, err := time.Parse(time.RFC3339Nano, m["sample"].(map[string]any)["start"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if first.IsZero() {
			first = s
		}
		out = append(out, s.Sub(first))
	}
	return out
}

// An open loop sends each request when it arrives, whatever is in flight: the start times are
// exactly the seeded schedule (serving.Arrivals), and requests overlap as they fall. The rows
// record the offered rate, the burstiness and the seed; goodput is the highest rate that met
// the SLO.
func TestServingOpenLoopFollowsTheSeededSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &scripted.ServingDriver{TTFT: 50 * time.Millisecond, ITL: 10 * time.Millisecond}
		r := serveScripted(t, context.Background(), d, Serving{Rates: []float64{10, 40}, Burstiness: 0.5, Seed: 3, Requests: 12,
			WarmupPerStream: 1, SLO: serving.SLO{TTFT: time.Second, ITL: 50 * time.Millisecond}})
		if r.err != nil {
			t.Fatal(r.err, r.log)
		}
		starts := requestStarts(t, r)
		if len(starts) != 24 {
			t.Fatalf("%d measured requests, want 24", len(starts))
		}
		for li, rate := range []float64{10, 40} {
			a := serving.NewArrivals(rate, 0.5, 3)
			var want time.Duration
			for i := range 12 {
				if i > 0 {
					want += a.Next()
				}
				if got := starts[12*li+i] - starts[12*li]; got != want {
					t.Errorf("rate %g request %d started at +%s, the schedule says +%s", rate, i, got, want)
				}
			}
			l := r.outcomes[0].Levels[li]
			if l.Open == nil || float64(l.Open.Rate) != rate || l.Open.Seed != 3 || l.Open.Burstiness != 0.5 || l.Open.Capped != 0 ||
				l.Completed != 12 || l.TTFT.P99 != 50 || l.ITL.P99 != 10 || !l.SLOMet {
				t.Errorf("rate %g: %+v open %+v", rate, l, l.Open)
			}
			row := r.rows[li]
			if row["offered_rate"] != serving.FormatRate(rate) || row["burstiness"] != "0.5" || row["seed"] != "3" || row["capped"] != "0" || row["concurrency"] != "0" {
				t.Errorf("row %d: %v", li, row)
			}
		}
		// At 40/s with 140 ms requests several overlap: nothing waits for another.
		if l := r.outcomes[0].Levels[1]; l.Open.MaxInFlight < 3 || d.MaxSeen != l.Open.MaxInFlight {
			t.Errorf("max in flight %d, driver saw %d", l.Open.MaxInFlight, d.MaxSeen)
		}
		if g := r.outcomes[0].Goodput; g == nil || g.Open.Rate != 40 {
			t.Errorf("goodput %+v", g)
		}
		if g := r.ofType("goodput"); len(g) != 1 || g[0]["goodput_offered_rate"] != 40.0 {
			t.Errorf("goodput records %v", g)
		}
		if !strings.Contains(r.log, "rate=40/s, burstiness 0.5") || !strings.Contains(r.log, "Goodput (base, parallel=default): offered rate=40/s") {
			t.Errorf("console:\n%s", r.log)
		}
	})
}

// Every request at once (inf) under a cap of 2: two are sent, the four others wait for a
// request to end and are counted as capped; each one's clock starts when it is sent, so TTFT
// stays the server's 50 ms, and never more than the cap is in flight.
func TestServingOpenLoopCapCountsTheRequestsThatWaited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &scripted.ServingDriver{TTFT: 50 * time.Millisecond, ITL: 10 * time.Millisecond}
		r := serveScripted(t, context.Background(), d, Serving{Rates: []float64{math.Inf(1)}, MaxConcurrency: 2, Requests: 6,
			SLO: serving.SLO{TTFT: time.Second, ITL: time.Second}})
		if r.err != nil {
			t.Fatal(r.err)
		}
		want := []time.Duration{0, 0, 140 * time.Millisecond, 140 * time.Millisecond, 280 * time.Millisecond, 280 * time.Millisecond}
		got := requestStarts(t, r)
		if len(got) != len(want) {
			t.Fatalf("starts %v", got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("starts %v, want %v", got, want)
				break
			}
		}
		l := r.outcomes[0].Levels[0]
		if l.Open.Capped != 4 || l.Open.MaxInFlight != 2 || d.MaxSeen != 2 || l.TTFT.P99 != 50 || l.Completed != 6 || l.Span != 420*time.Millisecond {
			t.Errorf("level %+v open %+v, driver max %d", l, l.Open, d.MaxSeen)
		}
		if row := r.rows[0]; row["offered_rate"] != "inf" || row["capped"] != "4" || row["max_in_flight"] != "2" || row["concurrency"] != "2" {
			t.Errorf("row %v", row)
		}
	})
}

// Ctrl-C during an open loop: no arrival after it, what was sent is written (the cut requests
// canceled), and no goroutine is left waiting on the schedule.
func TestServingOpenLoopCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &scripted.ServingDriver{TTFT: 50 * time.Millisecond, ITL: 10 * time.Millisecond}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(1050*time.Millisecond, cancel)
		// Rate 1/s with regular gaps (a high burstiness): arrivals near 0, 1, 2… s.
		r := serveScripted(t, ctx, d, Serving{Rates: []float64{1}, Burstiness: 1e6, Requests: 50, SLO: serving.SLO{TTFT: time.Second, ITL: time.Second}})
		if r.err == nil {
			t.Fatal("Serve returned no error after Ctrl-C")
		}
		l := r.outcomes[0].Levels[0]
		if l.Sent != 2 || l.Completed != 1 || l.Canceled != 1 || !l.Interrupted || r.rows[0]["interrupted"] != "1" {
			t.Errorf("level %+v", l)
		}
	})
}

// SERVING_DURATION_SECS bounds an open loop's arrivals: nothing due after it is sent. Every
// request at once has no schedule to end, so it keeps a count (DefaultOpenRequests) even then.
func TestServingOpenLoopDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &scripted.ServingDriver{TTFT: 50 * time.Millisecond, ITL: 10 * time.Millisecond}
		r := serveScripted(t, context.Background(), d, Serving{Rates: []float64{10, math.Inf(1)}, Burstiness: 1e9, Duration: 350 * time.Millisecond,
			SLO: serving.SLO{TTFT: time.Second, ITL: time.Second}})
		if r.err != nil {
			t.Fatal(r.err)
		}
		// Gaps of 100 ms (a gamma of huge shape is all but constant): arrivals at 0, 100, 200
		// and 300 ms.
		if l := r.outcomes[0].Levels[0]; l.Sent != 4 || l.Completed != 4 || l.Requests != 0 {
			t.Errorf("rate 10 for 350 ms: %+v", l)
		}
		if l := r.outcomes[0].Levels[1]; l.Sent != 32 || l.Requests != 32 {
			t.Errorf("inf with a duration: %d sent of %d", l.Sent, l.Requests)
		}
	})
}
