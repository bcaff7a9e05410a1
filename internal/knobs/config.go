package knobs

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SourceDefault and SourceEnvironment are what Config.Source reports for a
// value from the registry and from the process environment; a value from an
// env file reports that Layer's Name.
const (
	SourceDefault     = "default"
	SourceEnvironment = "environment"
)

// Layer is one set of variables above the process environment, typically a
// parsed env file (Name is its path).
type Layer struct {
	Name string
	Vars map[string]string
}

type setting struct {
	value  string
	source string
}

// Config is the resolved view of the knobs: built-in defaults < process
// environment < env files, later files over earlier ones. It is immutable.
type Config struct {
	stack    string             // selects Knob.StackDefaults; "" for the general defaults
	order    []string           // process environment keys, first-occurrence order
	env      map[string]string  // process environment
	set      map[string]setting // topmost value of every key set by the environment or a file
	fromFile map[string]bool    // keys set by at least one file
}

// Resolve merges environ (os.Environ() form, KEY=VALUE; a repeated key keeps
// its last value) with the file layers, later layers overriding earlier ones.
func Resolve(environ []string, files ...Layer) *Config {
	c := &Config{
		env:      make(map[string]string, len(environ)),
		set:      make(map[string]setting, len(environ)),
		fromFile: map[string]bool{},
	}
	for _, kv := range environ {
		i := strings.IndexByte(kv, '=')
		if i <= 0 {
			continue // not KEY=VALUE; nothing a child could receive either
		}
		k, v := kv[:i], kv[i+1:]
		if _, seen := c.env[k]; !seen {
			c.order = append(c.order, k)
		}
		c.env[k] = v
		c.set[k] = setting{v, SourceEnvironment}
	}
	for i, l := range files {
		name := l.Name
		if name == "" {
			name = fmt.Sprintf("env layer %d", i+1)
		}
		for k, v := range l.Vars {
			c.set[k] = setting{v, name}
			c.fromFile[k] = true
		}
	}
	return c
}

// WithStack returns a view of c in which Get and the typed getters use the
// stack's defaults (Knob.StackDefaults), e.g. CTX = 1024 for "llama.cpp".
func (c *Config) WithStack(stack string) *Config {
	d := *c
	d.stack = stack
	return &d
}

// resolve returns the effective value of name and where it comes from. An
// empty value counts as unset (as ${VAR:-default} in the original) when the
// knob has a non-empty default.
func (c *Config) resolve(name string) (value, source string) {
	s, isSet := c.set[name]
	if isSet && s.value != "" {
		return s.value, s.source
	}
	if k, ok := Matches(name); ok {
		if d := k.DefaultFor(c.stack); d != "" || !isSet {
			return d, SourceDefault
		}
	}
	if isSet {
		return "", s.source
	}
	return "", ""
}

// Get returns the value of name, or its registered default when it is unset or
// empty ("" if it is neither set nor registered).
func (c *Config) Get(name string) string {
	v, _ := c.resolve(name)
	return v
}

// Source says where Get's value comes from: "default", "environment", or the
// Name (file path) of the env file that set it; "" for an unset, unregistered name.
func (c *Config) Source(name string) string {
	_, src := c.resolve(name)
	return src
}

// IsSet reports whether the environment or an env file gave name a non-empty
// value, i.e. whether Get returns something other than the default. Knobs that
// only apply "when set" (BENCH_NUM_CTX over CTX, SKIP_TEST_UNITS) use it.
func (c *Config) IsSet(name string) bool {
	s, ok := c.set[name]
	return ok && s.value != ""
}

// valueError names the knob, the value and its source: NAME="v" (from SRC): why.
// An unset, unregistered name reads "(unset)".
func (c *Config) valueError(name, value, source, why string) error {
	if source == "" {
		return fmt.Errorf("%s=%q (unset): %s", name, value, why)
	}
	return fmt.Errorf("%s=%q (from %s): %s", name, value, source, why)
}

func (c *Config) typed(name string, kind Kind) (string, error) {
	v, src := c.resolve(name)
	if err := checkKind(kind, v); err != nil {
		return "", c.valueError(name, v, src, err.Error())
	}
	return strings.TrimSpace(v), nil
}

// Int returns name as an integer.
func (c *Config) Int(name string) (int, error) {
	v, err := c.typed(name, KindInt)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(v)
}

// Float returns name as a number.
func (c *Config) Float(name string) (float64, error) {
	v, err := c.typed(name, KindFloat)
	if err != nil {
		return 0, err
	}
	return parseFloat(v)
}

// Bool01 returns name, which must be 0 or 1, as a bool.
func (c *Config) Bool01(name string) (bool, error) {
	v, err := c.typed(name, KindBool01)
	if err != nil {
		return false, err
	}
	return v == "1", nil
}

// Duration returns name, a number of seconds (fractions allowed), as a duration.
func (c *Config) Duration(name string) (time.Duration, error) {
	v, err := c.typed(name, KindSeconds)
	if err != nil {
		return 0, err
	}
	f, err := parseFloat(v)
	if err != nil || f*float64(time.Second) > math.MaxInt64 {
		return 0, c.valueError(name, v, c.Source(name), "too many seconds")
	}
	return time.Duration(math.Round(f * float64(time.Second))), nil
}

// List returns name split on whitespace and commas (nil when empty).
func (c *Config) List(name string) ([]string, error) {
	v, err := c.typed(name, KindList)
	if err != nil {
		return nil, err
	}
	return splitList(v), nil
}

// Ints returns name as a list of integers separated by whitespace and/or commas.
func (c *Config) Ints(name string) ([]int, error) {
	v, err := c.typed(name, KindIntList)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range splitList(v) {
		n, _ := strconv.Atoi(f) // checked by typed
		out = append(out, n)
	}
	return out, nil
}

// Regexp compiles name; an empty value gives nil (no filter).
func (c *Config) Regexp(name string) (*regexp.Regexp, error) {
	v, src := c.resolve(name)
	if v == "" {
		return nil, nil
	}
	re, err := regexp.Compile(v)
	if err != nil {
		return nil, c.valueError(name, v, src, "want a regular expression: "+err.Error())
	}
	return re, nil
}

// Unknown returns, sorted, the keys env files set that are not registered
// knobs. Env files may carry extra variables, so this is for a warning only.
func (c *Config) Unknown() []string {
	var out []string
	for k := range c.fromFile {
		if _, ok := Matches(k); !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Environ is the environment to hand to child processes: the process
// environment, with every variable the env files set (files override; an
// empty value stays empty). Process variables keep their order; variables
// only the files set follow, sorted. Defaults are not added.
func (c *Config) Environ() []string {
	out := make([]string, 0, len(c.set))
	for _, k := range c.order {
		out = append(out, k+"="+c.set[k].value)
	}
	var extra []string
	for k := range c.fromFile {
		if _, inEnv := c.env[k]; !inEnv {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		out = append(out, k+"="+c.set[k].value)
	}
	return out
}

// Validate type-checks every registered knob that the environment or an env
// file set (defaults are not checked) and returns all problems joined, one
// per line, sorted by knob name; nil if there are none.
func (c *Config) Validate() error {
	names := make([]string, 0, len(c.set))
	for k := range c.set {
		names = append(names, k)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		s := c.set[name]
		k, ok := Matches(name)
		if !ok || s.value == "" {
			continue
		}
		if err := k.Check(s.value); err != nil {
			errs = append(errs, c.valueError(name, s.value, s.source, err.Error()))
		}
	}
	return errors.Join(errs...)
}

// InvalidError says a knob's value cannot be used (the user's input, exit status 2).
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

// Invalid marks err as caused by knob values (nil stays nil).
func Invalid(err error) error {
	if err == nil {
		return nil
	}
	return &InvalidError{Err: err}
}
