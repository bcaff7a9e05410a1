package measure

import (
	"math"
	"testing"
	"time"
)

func TestRates(t *testing.T) {
	s := &Sample{Outcome: OK, ServerOutputTokens: 64, ServerDecodeDuration: 400 * time.Millisecond,
		ServerPromptTokens: 28, ServerPromptDuration: 14 * time.Millisecond, End: 500 * time.Millisecond,
		ChunkTimes: []time.Duration{100 * time.Millisecond, 110 * time.Millisecond, 130 * time.Millisecond}}
	if got := Derive(s).ServerDecodeTPS; got != 160 {
		t.Errorf("server decode rate %v, want 160 (64 tokens / 0.4 s)", got)
	}
	// Column 12 is the client's rate, whatever the server's timer says; the ratio is kept.
	if got := s.DecodeTokensPerSec(); math.Abs(got-2/0.03) > 1e-6 {
		t.Errorf("decode %v, want the stream's 2 tokens over 30 ms", got)
	}
	if m := Derive(s); math.Abs(m.ServerClientRatio-160/(2/0.03)) > 1e-9 || !m.TimerDisagrees {
		t.Errorf("ratio %v disagrees %v", m.ServerClientRatio, m.TimerDisagrees)
	}
	if got := s.PrefillTokensPerSec(); math.Abs(got-2000) > 1e-9 {
		t.Errorf("prefill %v", got)
	}
	if got := s.EndToEndTokensPerSec(); got != 128 {
		t.Errorf("e2e %v", got)
	}
	if got := s.StreamDecodeTokensPerSec(); math.Abs(got-2/0.03) > 1e-6 {
		t.Errorf("stream decode %v, want 2 tokens over 30 ms", got)
	}
	// Without server timings: the same figure, no ratio.
	s.ServerDecodeDuration = 0
	if m := Derive(s); math.Abs(m.DecodeTPS-2/0.03) > 1e-6 || m.ServerClientRatio != 0 || m.TimerDisagrees {
		t.Errorf("without a server timer: %+v", m)
	}
	// A failed attempt is 0, whatever it carries.
	s.Outcome = ErrHTTP
	if s.DecodeTokensPerSec() != 0 || s.EndToEndTokensPerSec() != 0 {
		t.Error("failed sample must rate 0")
	}
}

func TestSpread(t *testing.T) {
	s := &Sample{Outcome: OK, ServerOutputTokens: 10, ServerDecodeDuration: time.Second, RepeatTPS: []float64{9, 10, 12}}
	if lo, hi := s.Spread(); lo != 9 || hi != 12 {
		t.Fatal(lo, hi)
	}
	one := &Sample{Outcome: OK, ChunkTimes: []time.Duration{0, 100 * time.Millisecond}}
	if lo, hi := one.Spread(); lo != 10 || hi != 10 {
		t.Fatal(lo, hi)
	}
}

func TestArrived(t *testing.T) {
	s := &Sample{}
	s.Arrived(5*time.Millisecond, 0) // headers / a chunk without text
	s.Arrived(9*time.Millisecond, 1)
	s.Arrived(12*time.Millisecond, 2) // a chunk carrying two tokens
	if s.FirstByte != 5*time.Millisecond || s.FirstToken != 9*time.Millisecond {
		t.Fatalf("first byte %v first token %v", s.FirstByte, s.FirstToken)
	}
	if len(s.ChunkTimes) != 3 || s.ChunkTimes[2] != 12*time.Millisecond {
		t.Fatalf("chunk times %v: one entry per token", s.ChunkTimes)
	}
}

// A chunk carrying k tokens counts k, and the first chunk's tokens open the interval: chunks
// of 4 tokens every 10 ms decode at 400 tokens/s however many chunks there are.
func TestMultiTokenChunksDoNotBias(t *testing.T) {
	for _, chunks := range []int{2, 3, 10} {
		s := &Sample{Outcome: OK}
		for i := range chunks {
			s.Arrived(time.Duration(i)*10*time.Millisecond+time.Millisecond, 4)
		}
		if got := Derive(s).DecodeTPS; math.Abs(got-400) > 1e-9 {
			t.Errorf("%d chunks of 4: %v tok/s, want 400", chunks, got)
		}
	}
	// One token per chunk: (n-1) gaps.
	s := &Sample{Outcome: OK, ChunkTimes: []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond}}
	if got := Derive(s).DecodeTPS; math.Abs(got-100) > 1e-9 {
		t.Errorf("one per chunk: %v", got)
	}
	// Everything in one chunk: no decode interval.
	if got := Derive(&Sample{Outcome: OK, ChunkTimes: []time.Duration{5, 5, 5}}).DecodeTPS; got != 0 {
		t.Errorf("one chunk: %v", got)
	}
}
