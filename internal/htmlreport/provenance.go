package htmlreport

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/fuze-ai/fuze/internal/runset"
)

// Provenance is where the numbers come from.
type Provenance struct {
	GPUs []GPU `json:"gpus"`
	// Stacks are the stacks measured, with their versions when an input records them.
	Stacks []KV `json:"stacks"`
	// Fuze are the fuze versions that measured (from the inputs), Generator the one that wrote
	// the page.
	Fuze      []string `json:"fuze,omitempty"`
	Generator string   `json:"generator"`
	// Measured is the span of the rows' times ("2026-11-30 09:48:35 +00:00 – …").
	Measured string `json:"measured"`
	// Workload are the settings every configuration shares (output tokens, context, repeats…);
	// settings that differ are in each row's details.
	Workload []KV `json:"workload"`
	// Machine is what a machine description beside the inputs (machine.txt, written by
	// scripts/gpu-run.sh) says; Extra what --meta added.
	Machine []KV `json:"machine,omitempty"`
	Extra   []KV `json:"extra,omitempty"`
}

// GPU is one GPU the rows ran on.
type GPU struct {
	Name       string `json:"name"`
	Label      string `json:"label"`
	UUID       string `json:"uuid"`
	MemMiB     int    `json:"mem_mib,omitempty"`
	Driver     string `json:"driver,omitempty"`
	PowerLimit string `json:"power_limit,omitempty"`
}

// machineInfo is what a machine.txt says.
type machineInfo struct {
	kv   []KV
	gpus map[string]map[string]string // uuid → nvidia-smi --query-gpu column → value
}

var kvLine = regexp.MustCompile(`^([a-z][a-z0-9 ._-]*): (.+)$`)

// readMachine reads the "key: value" lines of a machine description, the CSV block after
// "nvidia-smi --query-gpu:" (its columns by header, per GPU UUID) and the "release" line of the
// block after "nvcc:". The nvidia-smi table and other blocks are skipped.
func readMachine(path string) (machineInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return machineInfo{}, err
	}
	defer f.Close()
	mi := machineInfo{gpus: map[string]map[string]string{}}
	sc := bufio.NewScanner(f)
	block := ""
	var header []string
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \r")
		switch {
		case line == "":
			block, header = "", nil
			continue
		case strings.HasSuffix(line, ":") && !strings.Contains(line, ": "):
			block, header = strings.TrimSuffix(line, ":"), nil
			continue
		}
		if m := kvLine.FindStringSubmatch(line); m != nil {
			block, header = "", nil
			mi.kv = append(mi.kv, KV{m[1], m[2]})
			continue
		}
		switch {
		case strings.HasPrefix(block, "nvidia-smi --query-gpu"):
			cells := strings.Split(line, ",")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			if header == nil {
				header = cells
				continue
			}
			row := map[string]string{}
			for i, h := range header {
				if i < len(cells) {
					row[strings.Fields(h)[0]] = cells[i]
				}
			}
			if u := row["uuid"]; u != "" {
				mi.gpus[u] = row
			}
			continue
		case block == "nvcc":
			if strings.Contains(line, "release") {
				mi.kv = append(mi.kv, KV{"CUDA (nvcc)", strings.TrimSpace(line)})
			}
			continue
		}
	}
	return mi, sc.Err()
}

// buildProvenance gathers the provenance block.
func buildProvenance(cs []runset.Config, serving []servingLevel, machines []string, opts Options) (Provenance, []string) {
	p := Provenance{Generator: opts.Generator}
	var warnings []string
	stackVersions := map[string][]string{}
	// --meta with a stack's name is that stack's version (llama.cpp=b4567).
	for _, kv := range opts.Meta {
		if st := stackOfKey(strings.ToLower(kv.Key)); st != "" {
			stackVersions[st] = appendNew(stackVersions[st], kv.Value)
			continue
		}
		p.Extra = append(p.Extra, kv)
	}
	gpuInfo := map[string]map[string]string{}
	fuze := map[string]bool{}
	for _, path := range machines {
		mi, err := readMachine(path)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		for _, kv := range mi.kv {
			switch k := strings.ToLower(kv.Key); {
			case k == "fuze":
				fuze[strings.TrimPrefix(kv.Value, "fuze ")] = true
			case isStack(k):
				stackVersions[stackOfKey(k)] = appendNew(stackVersions[stackOfKey(k)], kv.Value)
			default:
				p.Machine = appendKV(p.Machine, kv)
			}
		}
		for u, row := range mi.gpus {
			gpuInfo[u] = row
		}
	}
	p.Fuze = sortedKeys(fuze)

	// Versions a record carries in its settings (e.g. a server_version a driver reported).
	for i := range cs {
		if s := cs[i].Sample(); s != nil {
			for k, v := range s.Settings {
				if strings.HasSuffix(k, "version") && v != "" {
					stackVersions[cs[i].Stack] = appendNew(stackVersions[cs[i].Stack], v)
				}
			}
		}
	}
	stacks := map[string]bool{}
	for _, c := range cs {
		stacks[c.Stack] = true
	}
	for _, l := range serving {
		stacks[l.Stack] = true
	}
	for _, st := range sortedKeys(stacks) {
		v := strings.Join(stackVersions[st], ", ")
		if v == "" {
			v = "version not recorded in the inputs"
		}
		p.Stacks = append(p.Stacks, KV{st, v})
	}

	seen := map[string]bool{}
	var first, last time.Time
	for _, c := range cs {
		if t, err := time.Parse(time.RFC3339, c.TS); err == nil {
			if first.IsZero() || t.Before(first) {
				first = t
			}
			if t.After(last) {
				last = t
			}
		}
		k := c.GPUUUID + "\x00" + c.GPULabel + "\x00" + c.GPUName
		if seen[k] || (c.GPUUUID == "" && c.GPULabel == "" && c.GPUName == "") {
			continue
		}
		seen[k] = true
		g := GPU{Name: c.GPUName, Label: c.GPULabel, UUID: c.GPUUUID, MemMiB: c.GPUMemMiB}
		if row := gpuInfo[c.GPUUUID]; row != nil {
			g.Driver, g.PowerLimit = row["driver_version"], row["power.limit"]
		}
		p.GPUs = append(p.GPUs, g)
	}
	sort.Slice(p.GPUs, func(i, j int) bool { return p.GPUs[i].UUID+p.GPUs[i].Label < p.GPUs[j].UUID+p.GPUs[j].Label })
	if !first.IsZero() {
		p.Measured = humanTS(first.Format(time.RFC3339))
		if !last.Equal(first) {
			p.Measured += " – " + humanTS(last.Format(time.RFC3339))
		}
	}
	p.Workload = workload(cs)
	return p, warnings
}

// workload lists the settings with one value across every configuration; a setting with
// several values lists them all.
func workload(cs []runset.Config) []KV {
	vals := map[string]map[string]bool{}
	add := func(k, v string) {
		if v == "" {
			return
		}
		if vals[k] == nil {
			vals[k] = map[string]bool{}
		}
		vals[k][v] = true
	}
	for _, c := range cs {
		add("output tokens (num_predict)", c.NumPredict)
		add("context (num_ctx)", c.NumCtx)
		if s := c.Sample(); s != nil {
			if len(s.RepeatTPS) > 0 {
				add("repeats per configuration (BENCH_REPEAT)", fmt.Sprint(len(s.RepeatTPS)))
			}
			if s.ServerPromptTokens > 0 {
				add("prompt tokens (as the server counted them)", fmt.Sprintf("%d (%s)", s.ServerPromptTokens, c.Stack))
			}
			add("temperature", s.Settings["temperature"])
		}
		add("batch", fmt.Sprintf("%s (%s)", c.Batch, c.Stack))
	}
	var out []KV
	for _, k := range sortedKeys(vals) {
		out = append(out, KV{k, strings.Join(sortedKeys(vals[k]), ", ")})
	}
	return out
}

func isStack(k string) bool { return stackOfKey(k) != "" }

// stackOfKey maps a machine.txt key to a stack: "ollama" → ollama, "llama.cpp" / "llama-server"
// → llama.cpp, "vllm" → vLLM, "triton" → Triton.
func stackOfKey(k string) string {
	switch k {
	case "ollama":
		return "ollama"
	case "llama.cpp", "llamacpp", "llama-server":
		return "llama.cpp"
	case "vllm":
		return "vLLM"
	case "triton":
		return "Triton"
	}
	return ""
}

func appendNew(xs []string, v string) []string {
	for _, x := range xs {
		if x == v {
			return xs
		}
	}
	return append(xs, v)
}

func appendKV(kvs []KV, kv KV) []KV {
	for _, x := range kvs {
		if x == kv {
			return kvs
		}
	}
	return append(kvs, kv)
}
