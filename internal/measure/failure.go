package measure

import (
	"context"
	"errors"
)

// Failure is an error with its outcome kind: what a driver's server or client side returns
// when an attempt cannot be measured, so that the engine writes the right failure row.
type Failure struct {
	Outcome string // one of the Err* kinds
	Err     error
}

func (f *Failure) Error() string { return f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// Fail marks err as a failure of the given kind (nil stays nil).
func Fail(outcome string, err error) error {
	if err == nil {
		return nil
	}
	return &Failure{Outcome: outcome, Err: err}
}

// Classify gives the outcome kind and message of err: a Failure's own kind, ErrCanceled or
// ErrTimeout for context errors, ErrOther for anything else.
func Classify(err error) (outcome, message string) {
	var f *Failure
	switch {
	case errors.As(err, &f):
		return f.Outcome, f.Err.Error()
	case errors.Is(err, context.Canceled):
		return ErrCanceled, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return ErrTimeout, err.Error()
	default:
		return ErrOther, err.Error()
	}
}

// SetFailure records err on s as its outcome.
func (s *Sample) SetFailure(err error) {
	s.Outcome, s.Error = Classify(err)
}
