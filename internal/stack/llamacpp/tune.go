package llamacpp

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stack"
)

// Tuning is the values to try of llama-server's tuning flags (issue 16); every one is on the
// command line, so each value is a server of its own. Empty: not swept.
type Tuning struct {
	FlashAttn []string // LLAMACPP_FLASH_ATTN_SET: -fa on|off|auto
	CacheType []string // LLAMACPP_CACHE_TYPE_SET: -ctk and -ctv
	Batch     []int    // LLAMACPP_BATCH_SET: -b
	UBatch    []int    // LLAMACPP_UBATCH_SET: -ub
	Threads   []int    // LLAMACPP_THREADS_SET: -t
}

func (t Tuning) empty() bool {
	return len(t.FlashAttn)+len(t.CacheType)+len(t.Batch)+len(t.UBatch)+len(t.Threads) == 0
}

// Setting names of the tuning flags.
const (
	SetFlashAttn = "flash_attn"
	SetCacheType = "cache_type"
	SetBatch     = "batch_size"
	SetUBatch    = "ubatch_size"
	SetThreads   = "threads"
)

func tuningFromKnobs(cfg *knobs.Config) (Tuning, []error) {
	var t Tuning
	var errs []error
	ints := func(name string) []int {
		v, err := cfg.Ints(name)
		errs = append(errs, err)
		return v
	}
	fa, err := cfg.List("LLAMACPP_FLASH_ATTN_SET")
	errs = append(errs, err)
	for _, v := range fa {
		switch v {
		case "1":
			v = "on"
		case "0":
			v = "off"
		case "on", "off", "auto":
		default:
			errs = append(errs, fmt.Errorf("LLAMACPP_FLASH_ATTN_SET (from %s): %q is not on, off, auto, 1 or 0", cfg.Source("LLAMACPP_FLASH_ATTN_SET"), v))
		}
		t.FlashAttn = append(t.FlashAttn, v)
	}
	t.CacheType, err = cfg.List("LLAMACPP_CACHE_TYPE_SET")
	errs = append(errs, err)
	t.Batch, t.UBatch, t.Threads = ints("LLAMACPP_BATCH_SET"), ints("LLAMACPP_UBATCH_SET"), ints("LLAMACPP_THREADS_SET")
	return t, errs
}

// cpuTuning is what a CPU endpoint sweeps without tuning sets: threads (every core, then
// half), the batch (BATCH, then 512) and the KV cache (f16, q8_0: flash attention on for
// both, as a quantized V cache needs it).
func cpuTuning(cores, batch int) Tuning {
	t := Tuning{Threads: []int{cores}, Batch: []int{batch}, CacheType: []string{"f16", "q8_0"}}
	if half := cores / 2; half >= 1 && half != cores {
		t.Threads = append(t.Threads, half)
	}
	if batch != 512 {
		t.Batch = append(t.Batch, 512)
	}
	return t
}

func quantized(kv string) bool { return kv != "" && kv != "f16" }

// tuned is the product of the offload candidates and the tuning sets, in the sets' order.
// Skipped: a quantized cache with -fa off (llama-server refuses to start), a -ub above -b.
func (d *Driver) tuned(offload []stack.Candidate, tu Tuning) []stack.Candidate {
	fa := tu.FlashAttn
	anyQuant := false
	for _, kv := range tu.CacheType {
		anyQuant = anyQuant || quantized(kv)
	}
	if len(fa) == 0 && anyQuant {
		fa = []string{"on"}
	}
	var out []stack.Candidate
	for _, f := range stack.TuneValues(fa) {
		for _, kv := range stack.TuneValues(tu.CacheType) {
			if quantized(kv) && f == "off" {
				fmt.Fprintf(d.log, "   skipped: -ctk/-ctv %s with -fa off: llama-server needs flash attention for a quantized V cache\n", kv)
				continue
			}
			for _, b := range stack.TuneInts(tu.Batch) {
				for _, ub := range stack.TuneInts(tu.UBatch) {
					bv := b
					if bv == "" {
						bv = strconv.Itoa(d.cfg.BatchSize)
					}
					if n, _ := strconv.Atoi(ub); ub != "" && n > atoi(bv) {
						fmt.Fprintf(d.log, "   skipped: -ub %s above -b %s\n", ub, bv)
						continue
					}
					for _, th := range stack.TuneInts(tu.Threads) {
						for _, base := range offload {
							c := base
							c.Settings = append([]stack.Setting(nil), base.Settings...)
							set := func(name, v string) {
								if v == "" {
									return
								}
								for i := range c.Settings {
									if c.Settings[i].Name == name {
										c.Settings[i].Value = v
										return
									}
								}
								c.Settings = append(c.Settings, stack.Setting{Name: name, Value: v, Level: stack.ServerLevel})
							}
							set(SetFlashAttn, f)
							set(SetCacheType, kv)
							set(SetBatch, b)
							set(SetUBatch, ub)
							set(SetThreads, th)
							if b != "" {
								c.Batch = b
							}
							out = append(out, c)
						}
					}
				}
			}
		}
	}
	return out
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// tuningArgs are the command-line flags of c's tuning settings. Flash attention is written the
// way the binary takes it: "--flash-attn on|off|auto" since llama.cpp made it a value (mid
// 2025), a bare "--flash-attn" (on) before that, when "off" and "auto" are the default and
// write nothing.
func tuningArgs(c stack.Candidate, flashAttnTakesValue bool) []string {
	m := c.SettingsMap()
	var args []string
	if v := m[SetFlashAttn]; v != "" {
		switch {
		case flashAttnTakesValue:
			args = append(args, "--flash-attn", v)
		case v == "on":
			args = append(args, "--flash-attn")
		}
	}
	if v := m[SetCacheType]; v != "" {
		args = append(args, "--cache-type-k", v, "--cache-type-v", v)
	}
	if v := m[SetUBatch]; v != "" {
		args = append(args, "--ubatch-size", v)
	}
	if v := m[SetThreads]; v != "" {
		args = append(args, "--threads", v)
	}
	return args
}

// batchOf is c's --batch-size: its tuned value, else BATCH.
func (d *Driver) batchOf(c stack.Candidate) string {
	if v := c.SettingsMap()[SetBatch]; v != "" {
		return v
	}
	return strconv.Itoa(d.cfg.BatchSize)
}

// ServerCommand implements stack.CommandLiner: the exact llama-server command line of c (the
// model path as the driver resolved it when it knows it).
func (d *Driver) ServerCommand(ep stack.Endpoint, t stack.Target, c stack.Candidate) string {
	path := "<" + t.Alias + ".gguf>"
	d.mu.Lock()
	if m, ok := d.models[t.Alias]; ok {
		path = m.Path
	}
	d.mu.Unlock()
	return d.bin + " " + strings.Join(d.ServerArgs(ep, path, c), " ")
}

func cores() int { return runtime.NumCPU() }

// flashAttnHelp matches the flash-attention line of `llama-server --help` when the flag takes a
// value ("-fa,   --flash-attn [on|off|auto]"); a bare flag's line has no "on|off".
var flashAttnHelp = regexp.MustCompile(`--flash-attn\s+\[?(FA|on\|off)`)

// FlashAttnTakesValue reports whether llama-server's help shows --flash-attn taking a value.
// It reads the help once per driver; a binary whose help cannot be read is taken to be current
// (a value), the form its error message would then name.
func (d *Driver) FlashAttnTakesValue() bool {
	d.faOnce.Do(func() {
		d.faValue = true
		if d.bin == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(ctx, d.bin, "--help").CombinedOutput()
		if bytes.Contains(out, []byte("--flash-attn")) {
			d.faValue = flashAttnHelp.Match(out)
		}
	})
	return d.faValue
}
