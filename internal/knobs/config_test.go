package knobs

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPrecedence(t *testing.T) {
	environ := []string{"PATH=/usr/bin", "BENCH_NUM_CTX=2048", "BENCH_NUM_PREDICT=100", "TEMPERATURE=0.5", "TIMEOUT_GEN=30"}
	a := Layer{Name: "a.env", Vars: map[string]string{"BENCH_NUM_PREDICT": "128", "TEMPERATURE": "0.7", "FAST_MODE": "0"}}
	b := Layer{Name: "b.env", Vars: map[string]string{"TEMPERATURE": "0.9"}}
	c := Resolve(environ, a, b)
	for _, tc := range []struct{ name, value, source string }{
		{"NG_PERCENT_SET", "100 90 75 60 50 40 30 20 10", SourceDefault}, // default only
		{"BENCH_NUM_CTX", "2048", SourceEnvironment},                     // default < env
		{"BENCH_NUM_PREDICT", "128", "a.env"},                            // env < file
		{"FAST_MODE", "0", "a.env"},                                      // default < file
		{"TEMPERATURE", "0.9", "b.env"},                                  // file1 < file2
		{"TIMEOUT_GEN", "30", SourceEnvironment},
		{"PATH", "/usr/bin", SourceEnvironment}, // not a knob, still readable
		{"NOT_A_KNOB", "", ""},
	} {
		if got := c.Get(tc.name); got != tc.value {
			t.Errorf("Get(%s) = %q, want %q", tc.name, got, tc.value)
		}
		if got := c.Source(tc.name); got != tc.source {
			t.Errorf("Source(%s) = %q, want %q", tc.name, got, tc.source)
		}
	}
	if !c.IsSet("BENCH_NUM_CTX") || c.IsSet("NG_PERCENT_SET") {
		t.Error("IsSet: want true for an environment value, false for a default")
	}
	if d, err := c.Duration("TIMEOUT_GEN"); err != nil || d != 30*time.Second {
		t.Errorf("Duration(TIMEOUT_GEN) = %v, %v", d, err)
	}
}

func TestEmptyMeansDefault(t *testing.T) {
	c := Resolve([]string{"LOG_DIR=/tmp/x", "ALIAS_SUFFIX=-env", "CTX="},
		Layer{Name: "a.env", Vars: map[string]string{"LOG_DIR": "", "ALIAS_SUFFIX": ""}})
	// A file's empty value hides the environment's and gives the default, as ${VAR:-d} did.
	if got, src := c.Get("LOG_DIR"), c.Source("LOG_DIR"); got != "/var/log/fuze-stack" || src != SourceDefault {
		t.Errorf("LOG_DIR = %q from %q, want the default", got, src)
	}
	// No default: the empty value itself, from the file.
	if got, src := c.Get("ALIAS_SUFFIX"), c.Source("ALIAS_SUFFIX"); got != "" || src != "a.env" {
		t.Errorf("ALIAS_SUFFIX = %q from %q, want \"\" from a.env", got, src)
	}
	if c.IsSet("LOG_DIR") || c.IsSet("CTX") {
		t.Error("an empty value is not set")
	}
	if n, err := c.WithStack(StackLlamaCpp).Int("CTX"); err != nil || n != 1024 {
		t.Errorf("llama.cpp CTX = %d, %v; want the stack default 1024", n, err)
	}
}

func TestWithStack(t *testing.T) {
	c := Resolve(nil)
	if got := c.Get("CTX"); got != "4096" {
		t.Errorf("CTX = %q, want 4096", got)
	}
	ll := c.WithStack(StackLlamaCpp)
	if got := ll.Get("CTX"); got != "1024" {
		t.Errorf("llama.cpp CTX = %q, want 1024", got)
	}
	if got := c.Get("CTX"); got != "4096" {
		t.Errorf("WithStack changed the original config: CTX = %q", got)
	}
	set := Resolve([]string{"CTX=8192"}).WithStack(StackLlamaCpp)
	if got, src := set.Get("CTX"), set.Source("CTX"); got != "8192" || src != SourceEnvironment {
		t.Errorf("set CTX = %q from %q; a set value beats the stack default", got, src)
	}
}

func TestTypedGetters(t *testing.T) {
	c := Resolve([]string{"ZERO_TOKPS_BREAK= 4 ", "GPU_MEM_UTIL=0.85", "NGL_CANDIDATES=-1,64 32",
		"WAIT_API_SECS=1.5", "INCLUDE_MODELS=^gemma3:4b$"},
		Layer{Name: "a.env", Vars: map[string]string{"EXHAUSTIVE": "1", "TRITON_MODELS": "a|b, c|d"}})
	if n, err := c.Int("ZERO_TOKPS_BREAK"); err != nil || n != 4 {
		t.Errorf("Int = %d, %v", n, err)
	}
	if n, err := c.Int("BENCH_NUM_CTX"); err != nil || n != 4096 {
		t.Errorf("Int(default) = %d, %v", n, err)
	}
	if f, err := c.Float("GPU_MEM_UTIL"); err != nil || f != 0.85 {
		t.Errorf("Float = %v, %v", f, err)
	}
	if f, err := c.Float("TEMPERATURE"); err != nil || f != 0 {
		t.Errorf("Float(default) = %v, %v", f, err)
	}
	if b, err := c.Bool01("EXHAUSTIVE"); err != nil || !b {
		t.Errorf("Bool01 = %v, %v", b, err)
	}
	if b, err := c.Bool01("FAST_MODE"); err != nil || !b {
		t.Errorf("Bool01(default) = %v, %v", b, err)
	}
	if d, err := c.Duration("WAIT_API_SECS"); err != nil || d != 1500*time.Millisecond {
		t.Errorf("Duration = %v, %v", d, err)
	}
	if l, err := c.List("TRITON_MODELS"); err != nil || !slices.Equal(l, []string{"a|b", "c|d"}) {
		t.Errorf("List = %q, %v", l, err)
	}
	if l, err := c.List("MODELS"); err != nil || l != nil {
		t.Errorf("List(empty) = %q, %v", l, err)
	}
	if l, err := c.Ints("NGL_CANDIDATES"); err != nil || !slices.Equal(l, []int{-1, 64, 32}) {
		t.Errorf("Ints = %v, %v", l, err)
	}
	if l, err := c.Ints("NG_PERCENT_SET"); err != nil || len(l) != 9 || l[0] != 100 {
		t.Errorf("Ints(default) = %v, %v", l, err)
	}
	if re, err := c.Regexp("INCLUDE_MODELS"); err != nil || !re.MatchString("gemma3:4b") || re.MatchString("gemma3:4b-it") {
		t.Errorf("Regexp = %v, %v", re, err)
	}
	if re, err := c.Regexp("EXCLUDE_MODELS"); err != nil || re != nil {
		t.Errorf("Regexp(empty) = %v, %v; want nil, nil", re, err)
	}
}

func TestTypedGetterErrors(t *testing.T) {
	c := Resolve([]string{"TIMEOUT_GEN=soon", "ZERO_TOKPS_BREAK=3.5", "NGL_CANDIDATES=-1 all"},
		Layer{Name: "a.env", Vars: map[string]string{"EXHAUSTIVE": "yes", "GPU_MEM_UTIL": "most", "EXCLUDE_MODELS": "(", "WAIT_API_SECS": "-1"}})
	for _, tc := range []struct {
		name string
		get  func(string) error
		want string
	}{
		{"EXHAUSTIVE", func(n string) error { _, err := c.Bool01(n); return err }, `EXHAUSTIVE="yes" (from a.env): want 0 or 1`},
		{"ZERO_TOKPS_BREAK", func(n string) error { _, err := c.Int(n); return err }, `ZERO_TOKPS_BREAK="3.5" (from environment): want an integer`},
		{"GPU_MEM_UTIL", func(n string) error { _, err := c.Float(n); return err }, `GPU_MEM_UTIL="most" (from a.env): want a number`},
		{"TIMEOUT_GEN", func(n string) error { _, err := c.Duration(n); return err }, `TIMEOUT_GEN="soon" (from environment): want a number of seconds ≥ 0`},
		{"WAIT_API_SECS", func(n string) error { _, err := c.Duration(n); return err }, `WAIT_API_SECS="-1" (from a.env): want a number of seconds ≥ 0`},
		{"NGL_CANDIDATES", func(n string) error { _, err := c.Ints(n); return err }, `NGL_CANDIDATES="-1 all" (from environment): want integers separated by spaces or commas ("all" is not one)`},
		{"EXCLUDE_MODELS", func(n string) error { _, err := c.Regexp(n); return err }, `EXCLUDE_MODELS="(" (from a.env): want a regular expression`},
		{"NOT_A_KNOB", func(n string) error { _, err := c.Int(n); return err }, `NOT_A_KNOB="" (unset): want an integer`},
	} {
		err := tc.get(tc.name)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want prefix %q", tc.name, err, tc.want)
		}
	}
}

func TestUnknown(t *testing.T) {
	c := Resolve([]string{"MY_SHELL_VAR=1", "HOME=/root"},
		Layer{Name: "a.env", Vars: map[string]string{"FAST_MODE": "1", "ZZ_EXTRA": "x", "LLAMACPP_PATH_foo_": "/m.gguf"}},
		Layer{Name: "b.env", Vars: map[string]string{"AA_EXTRA": "y", "ZZ_EXTRA": "z", "VLLM_MODEL_x": "org/m"}})
	// Only keys from files count; environment variables are none of our business.
	if got, want := c.Unknown(), []string{"AA_EXTRA", "ZZ_EXTRA"}; !slices.Equal(got, want) {
		t.Errorf("Unknown() = %q, want %q", got, want)
	}
	if got := Resolve([]string{"X=1"}).Unknown(); len(got) != 0 {
		t.Errorf("Unknown() without files = %q", got)
	}
}

func TestEnviron(t *testing.T) {
	environ := []string{"PATH=/usr/local/bin:/usr/bin", "HOME=/home/u", "FAST_MODE=1", "not-an-assignment", "HOME=/home/v"}
	c := Resolve(environ,
		Layer{Name: "a.env", Vars: map[string]string{"FAST_MODE": "0", "ZED": "1", "ALIAS_SUFFIX": "-explore"}},
		Layer{Name: "b.env", Vars: map[string]string{"ALIAS_SUFFIX": "", "BENCH_NUM_CTX": "8192"}})
	want := []string{
		"PATH=/usr/local/bin:/usr/bin", // unrelated variables pass through
		"HOME=/home/v",                 // repeated key: last value, first position
		"FAST_MODE=0",                  // file overrides environment
		"ALIAS_SUFFIX=",                // later file's empty value wins (children see it set but empty)
		"BENCH_NUM_CTX=8192",
		"ZED=1", // unknown file keys are exported too
	}
	got := c.Environ()
	if !slices.Equal(got, want) {
		t.Errorf("Environ() =\n%q\nwant\n%q", got, want)
	}
	// Defaults are not exported.
	for _, kv := range got {
		if strings.HasPrefix(kv, "NG_PERCENT_SET=") {
			t.Errorf("default exported: %s", kv)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := Resolve([]string{"PATH=/bin", "SOME_VAR=zzz", "FAST_MODE=1"}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	c := Resolve([]string{"TIMEOUT_GEN=soon", "VERBOSE=", "RANDOM_VAR=??"},
		Layer{Name: "a.env", Vars: map[string]string{"EXHAUSTIVE": "yes", "HOST": "localhost", "EXCLUDE_MODELS": "[", "FAST_MODE": "0"}},
		Layer{Name: "b.env", Vars: map[string]string{"NGL_CANDIDATES": "1 x", "CTX": "4k", "TRITON_HTTP_A": "127.0.0.1:99999"}})
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want errors")
	}
	lines := strings.Split(err.Error(), "\n")
	wantPrefixes := []string{
		`CTX="4k" (from b.env): want an integer`,
		`EXCLUDE_MODELS="[" (from a.env): want a regular expression`,
		`EXHAUSTIVE="yes" (from a.env): want 0 or 1`,
		`HOST="localhost" (from a.env): want HOST:PORT`,
		`NGL_CANDIDATES="1 x" (from b.env): want integers`,
		`TIMEOUT_GEN="soon" (from environment): want a number of seconds`,
		`TRITON_HTTP_A="127.0.0.1:99999" (from b.env): want HOST:PORT with a port`,
	}
	if len(lines) != len(wantPrefixes) {
		t.Fatalf("Validate() gave %d problems, want %d:\n%v", len(lines), len(wantPrefixes), err)
	}
	for i, p := range wantPrefixes {
		if !strings.HasPrefix(lines[i], p) {
			t.Errorf("problem %d = %q, want prefix %q", i, lines[i], p)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != len(wantPrefixes) {
		t.Errorf("Validate() should join one error per problem")
	}
}
