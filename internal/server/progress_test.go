package server

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// statuses collects the reports of waits.
type statuses struct {
	mu  sync.Mutex
	got []WaitStatus
}

func (s *statuses) add(st WaitStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, st)
}

func (s *statuses) all() []WaitStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]WaitStatus(nil), s.got...)
}

// A readiness wait reports when it begins, about once a second while it lasts (with the log's
// last line) and when it ends.
func TestWaitForReportsProgress(t *testing.T) {
	var s statuses
	ctx := WithWaitProgress(context.Background(), s.add)
	lines := []string{"loading", "load_tensors: 33 layers"}
	ready := time.Now().Add(1500 * time.Millisecond)
	err := WaitFor(ctx, "llama-server A", 10*time.Second, 50*time.Millisecond, func(context.Context) error {
		if time.Now().Before(ready) {
			return errors.New("503")
		}
		return nil
	}, nil, func() []string { return lines })
	if err != nil {
		t.Fatal(err)
	}
	got := s.all()
	if len(got) < 3 {
		t.Fatalf("%d reports, want a first, one a second, a last: %+v", len(got), got)
	}
	first, last := got[0], got[len(got)-1]
	if first.Name != "llama-server A" || first.Done || first.LastLine != "load_tensors: 33 layers" || first.Elapsed > time.Second {
		t.Errorf("first report %+v", first)
	}
	if !last.Done || last.Err != nil || last.Elapsed < 1500*time.Millisecond {
		t.Errorf("last report %+v", last)
	}
	for i, st := range got[1 : len(got)-1] {
		if st.Done || st.Elapsed < time.Second || st.Elapsed < got[i].Elapsed {
			t.Errorf("report %d: %+v", i+1, st)
		}
	}
}

// The failure of a wait is its last report; a wait without a listener reports nothing.
func TestWaitForReportsFailureAndLoading(t *testing.T) {
	var s statuses
	ctx := WithWaitProgress(context.Background(), s.add)
	err := WaitFor(ctx, "vllm", 10*time.Second, 10*time.Millisecond, func(context.Context) error {
		return Permanent(errors.New("not HTTP"))
	}, nil, nil)
	got := s.all()
	if err == nil || len(got) != 2 || !got[1].Done || got[1].Err != err || got[1].LastLine != "" {
		t.Fatalf("err %v, reports %+v", err, got)
	}

	var lines []string
	loader := lastLiner(func(n int) []string { return lines })
	lines = []string{"llm_load_print_meta: model size = 15 GiB"}
	s = statuses{}
	err = Loading(ctx, "ollama A: m", loader, func() error { time.Sleep(1200 * time.Millisecond); return nil })
	got = s.all()
	if err != nil || len(got) < 3 || got[0].Done || !got[len(got)-1].Done || got[1].LastLine != lines[0] {
		t.Fatalf("err %v, reports %+v", err, got)
	}

	if err := Loading(context.Background(), "x", nil, func() error { return errors.New("boom") }); err == nil || err.Error() != "boom" {
		t.Fatal(err)
	}
}

type lastLiner func(int) []string

func (l lastLiner) LastLines(n int) []string { return l(n) }
