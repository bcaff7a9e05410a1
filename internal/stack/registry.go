package stack

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stackname"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// RunContext is what a driver factory gets from the shared benchmark run.
type RunContext struct {
	Root   string // FUZE_ROOT: the repository the run belongs to
	LogDir string
	RunTS  string // YYYYmmdd_HHMMSS, in the names of the run's files
	Log    io.Writer
}

// Factory builds a stack's driver from the knobs (which it reads under its own knob scope)
// and may adjust the shared sweep policy. A knob it cannot use is a knobs.InvalidError; a
// stack this machine does not have is an UnavailableError.
type Factory func(ctx context.Context, cfg *knobs.Config, rc RunContext, p sweep.Policy) (Driver, sweep.Policy, error)

// Registration is what a driver package registers: its stack (a canonical name from
// internal/stackname) and the factory of its driver.
type Registration struct {
	Stack string
	New   Factory
}

var (
	regMu    sync.Mutex
	registry = map[string]Registration{}
)

// Register adds a stack's driver; driver packages call it from init. It panics on a name
// internal/stackname does not know or a second registration: both are programming errors.
func Register(r Registration) {
	regMu.Lock()
	defer regMu.Unlock()
	st, ok := stackname.Lookup(r.Stack)
	if !ok || st.Name != r.Stack {
		panic(fmt.Sprintf("stack.Register: %q is not a canonical name in internal/stackname", r.Stack))
	}
	if _, dup := registry[r.Stack]; dup {
		panic("stack.Register: " + r.Stack + " registered twice")
	}
	registry[r.Stack] = r
}

// Registered returns the registration of a stack by any of its spellings.
func Registered(name string) (Registration, bool) {
	st, ok := stackname.Lookup(name)
	if !ok {
		return Registration{}, false
	}
	regMu.Lock()
	defer regMu.Unlock()
	r, ok := registry[st.Name]
	return r, ok
}

// RegisterForTest registers r for the duration of a test (a scripted stack) and returns the
// function that removes it again.
func RegisterForTest(r Registration) (remove func()) {
	regMu.Lock()
	prev, had := registry[r.Stack]
	registry[r.Stack] = r
	regMu.Unlock()
	return func() {
		regMu.Lock()
		defer regMu.Unlock()
		if had {
			registry[r.Stack] = prev
		} else {
			delete(registry, r.Stack)
		}
	}
}
