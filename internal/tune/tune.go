// Package tune is the search over a product of settings (flash attention × KV-cache type ×
// batch × threads × …): it measures each server configuration's candidates together, so a
// server is started once per configuration and round rather than once per candidate, and it
// prunes clear losers early by successive halving on the significance rule.
//
// # The search
//
// Round 1 measures every candidate (one measurement: BENCH_REPEAT requests). After each round
// the leader is the valid candidate with the highest median decode rate over all its repeats
// so far; every other survivor whose repeats a two-sided Mann–Whitney U test (stats.Compare,
// α = stats.DefaultAlpha) says are slower than the leader's is pruned, with that p-value.
// The survivors get one more measurement (their repeats accumulate, so a close pair gains the
// power a 3-vs-3 test lacks: its smallest p is 0.1) until one survivor is left or Rounds is
// spent. Exhaustive measures every candidate Rounds times and prunes nothing: the full grid.
//
// Why prune on decode rate only: it is the seed's objective and the one every stack reports;
// TTFT and J/token are objectives of the report (Best per objective) over what was measured,
// so a candidate pruned for slow decoding cannot be the TTFT winner. The report says so.
package tune

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/fuze-ai/fuze/internal/stats"
)

// Policy is how the search spends measurements (knobs EXHAUSTIVE and TUNE_ROUNDS).
type Policy struct {
	// Exhaustive measures every candidate every round, pruning nothing.
	Exhaustive bool
	// Rounds is the most measurements a candidate gets (at least 1).
	Rounds int
	// Alpha is the significance level of pruning (0: stats.DefaultAlpha).
	Alpha float64
}

// Measurement is one measurement of a candidate: per-request figures of its repeats.
type Measurement struct {
	// Decode are the decode tokens/sec of the successful repeats (empty: the candidate failed).
	Decode []float64
	// TTFTms are the times to first token of the successful repeats, in milliseconds.
	TTFTms []float64
	// JPerToken are the joules per output token of the repeats (empty without telemetry).
	JPerToken []float64
	// Invalid says why the measurement may not lead (e.g. above the roofline).
	Invalid string
	// Error is the failure when Decode is empty.
	Error string
}

// Candidate is a candidate's record in the search.
type Candidate[C any] struct {
	C      C
	Server string // the server configuration key
	// Decode, TTFTms, JPerToken accumulate every measurement's repeats.
	Decode, TTFTms, JPerToken []float64
	Invalid, Error            string
	Rounds                    int // measurements made
	// PrunedRound is the round after which it was pruned (0: it survived); PrunedP the
	// p-value of its comparison with the leader then, PrunedRatio its median ÷ the leader's.
	PrunedRound          int
	PrunedP, PrunedRatio float64
	PrunedLeader         int // index of the leader it lost to
}

// Failed reports whether no repeat of the candidate worked.
func (c *Candidate[C]) Failed() bool { return len(c.Decode) == 0 }

// Median is the median decode rate over every repeat (0 when it failed).
func (c *Candidate[C]) Median() float64 {
	if c.Failed() {
		return 0
	}
	return stats.Median(c.Decode)
}

// Event is what the search reports as it goes (the engine turns it into console lines and
// JSONL events).
type Event struct {
	Kind string // "round" (a round starts), "pruned", "done"
	// Round is the round number (from 1).
	Round int
	// Candidate is the index of the pruned candidate; Leader the leader's.
	Candidate, Leader int
	P, Ratio          float64
	// Survivors is how many candidates go on (round, done).
	Survivors int
}

// Result is the search's record.
type Result[C any] struct {
	Candidates []Candidate[C]
	Best       int // index of the best by decode rate (-1: none worked)
	Rounds     int // rounds run
	// ServerStarts is how many server configurations the search started (a change of key
	// between consecutive measurements, the first one included); GridServerStarts what the
	// full grid measured in the planner's order would have needed for the same rounds
	// (a start at every change of key, every round), GroupedGridStarts the full grid grouped.
	ServerStarts, GridServerStarts, GroupedGridStarts int
	// Measurements made, and what the full grid would have made for the same rounds.
	Measurements, GridMeasurements int
}

// Run searches cands. key gives a candidate's server configuration; measure measures one
// candidate once (the server prepared for it by the caller's measure function). onEvent may
// be nil. Run stops when ctx is cancelled and returns its error with what it measured.
func Run[C any](ctx context.Context, p Policy, cands []C, key func(C) string, measure func(context.Context, int, C) Measurement, onEvent func(Event)) (Result[C], error) {
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	alpha := p.Alpha
	if alpha <= 0 {
		alpha = stats.DefaultAlpha
	}
	rounds := max(p.Rounds, 1)
	res := Result[C]{Best: -1}
	for _, c := range cands {
		res.Candidates = append(res.Candidates, Candidate[C]{C: c, Server: key(c)})
	}
	order := groupOrder(res.Candidates)
	alive := make([]bool, len(cands))
	for i := range alive {
		alive[i] = true
	}
	last := "\x00" // no server yet
	for r := 1; r <= rounds; r++ {
		var todo []int
		for _, i := range order {
			if alive[i] {
				todo = append(todo, i)
			}
		}
		if len(todo) == 0 || (r > 1 && len(todo) < 2) {
			break
		}
		// Every other round walks the groups backwards, so the server the last round ended
		// with serves the next round's first group without a restart.
		if r%2 == 0 {
			reverseGroups(todo, res.Candidates)
		}
		res.Rounds = r
		onEvent(Event{Kind: "round", Round: r, Survivors: len(todo)})
		for _, i := range todo {
			if err := ctx.Err(); err != nil {
				return withGrid(finish(res), order), err
			}
			c := &res.Candidates[i]
			if c.Server != last {
				res.ServerStarts++
				last = c.Server
			}
			m := measure(ctx, i, c.C)
			if err := ctx.Err(); err != nil {
				return withGrid(finish(res), order), err // an interrupted measurement is not one
			}
			res.Measurements++
			c.Rounds++
			c.Decode = append(c.Decode, positive(m.Decode)...)
			c.TTFTms = append(c.TTFTms, positive(m.TTFTms)...)
			c.JPerToken = append(c.JPerToken, positive(m.JPerToken)...)
			if m.Invalid != "" {
				c.Invalid = m.Invalid
			}
			if len(m.Decode) == 0 {
				c.Error = m.Error
				alive[i] = false // a failed configuration is not measured again
			}
		}
		lead := leader(res.Candidates, alive)
		if lead < 0 {
			break
		}
		for i := range res.Candidates {
			c := &res.Candidates[i]
			if !alive[i] || i == lead || p.Exhaustive {
				continue
			}
			cmp := stats.Compare(c.Decode, res.Candidates[lead].Decode, alpha)
			if cmp.Worse {
				alive[i] = false
				c.PrunedRound, c.PrunedP, c.PrunedRatio, c.PrunedLeader = r, cmp.P, cmp.Ratio, lead
				onEvent(Event{Kind: "pruned", Round: r, Candidate: i, Leader: lead, P: cmp.P, Ratio: cmp.Ratio})
			}
		}
	}
	res = withGrid(finish(res), order)
	survivors := 0
	for _, a := range alive {
		if a {
			survivors++
		}
	}
	onEvent(Event{Kind: "done", Round: res.Rounds, Leader: res.Best, Survivors: survivors})
	return res, nil
}

func finish[C any](res Result[C]) Result[C] {
	all := make([]bool, len(res.Candidates))
	for i := range all {
		all[i] = true
	}
	res.Best = leader(res.Candidates, all)
	return res
}

// leader is the valid working candidate among alive with the highest median decode rate
// (the earliest on a tie: the planner lists the more conventional configuration first).
func leader[C any](cs []Candidate[C], alive []bool) int {
	best, bestMed := -1, 0.0
	for i := range cs {
		if !alive[i] || cs[i].Failed() || cs[i].Invalid != "" {
			continue
		}
		if m := cs[i].Median(); best < 0 || m > bestMed {
			best, bestMed = i, m
		}
	}
	return best
}

// groupOrder is the candidates' indexes with each server configuration's candidates together,
// the configurations in order of first appearance, the candidates in the planner's order.
func groupOrder[C any](cs []Candidate[C]) []int {
	first := map[string]int{}
	for i, c := range cs {
		if _, ok := first[c.Server]; !ok {
			first[c.Server] = i
		}
	}
	order := identity(len(cs))
	sort.SliceStable(order, func(a, b int) bool { return first[cs[order[a]].Server] < first[cs[order[b]].Server] })
	return order
}

// reverseGroups reverses the order of the groups in todo, keeping each group's own order.
func reverseGroups[C any](todo []int, cs []Candidate[C]) {
	var groups [][]int
	for _, i := range todo {
		if n := len(groups); n > 0 && cs[groups[n-1][0]].Server == cs[i].Server {
			groups[n-1] = append(groups[n-1], i)
			continue
		}
		groups = append(groups, []int{i})
	}
	todo = todo[:0]
	for g := len(groups) - 1; g >= 0; g-- {
		todo = append(todo, groups[g]...)
	}
}

func keyChanges[C any](cs []Candidate[C], order []int) int {
	n, last := 0, "\x00"
	for _, i := range order {
		if cs[i].Server != last {
			n++
			last = cs[i].Server
		}
	}
	return n
}

func identity(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func positive(xs []float64) []float64 {
	var out []float64
	for _, x := range xs {
		if x > 0 && !math.IsInf(x, 0) && !math.IsNaN(x) {
			out = append(out, x)
		}
	}
	return out
}

// Describe is a one-line account of the search's cost against the full grid.
func (r Result[C]) Describe() string {
	return fmt.Sprintf("%d rounds, %d measurements (full grid: %d), %d server starts (full grid in the planner's order: %d, grouped: %d)",
		r.Rounds, r.Measurements, r.GridMeasurements, r.ServerStarts, r.GridServerStarts, r.GroupedGridStarts)
}

// withGrid fills in what the full grid would have cost for the rounds the search ran (begun
// rounds count, so an interrupted search is compared with the grid it had started): every
// candidate measured every round.
func withGrid[C any](res Result[C], order []int) Result[C] {
	res.GridMeasurements = len(res.Candidates) * res.Rounds
	res.GridServerStarts = res.Rounds * keyChanges(res.Candidates, identity(len(res.Candidates)))
	res.GroupedGridStarts = res.Rounds * keyChanges(res.Candidates, order)
	if res.Rounds > 1 {
		// A grouped grid walked back and forth shares a server between rounds, as Run does.
		res.GroupedGridStarts -= res.Rounds - 1
	}
	return res
}
