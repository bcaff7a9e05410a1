package telemetry

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// DefaultPowercap is where Linux exposes the RAPL energy counters.
const DefaultPowercap = "/sys/class/powercap"

// raplDomain is one package's counter: energy_uj, which wraps at max_energy_range_uj.
type raplDomain struct {
	name     string // e.g. package-0
	path     string // its energy_uj
	maxRange uint64
}

// rapl reads the CPU packages' energy counters.
type rapl struct{ domains []raplDomain }

// openRAPL finds the package domains under root (intel-rapl:N, which AMD CPUs use too; the
// psys domain, which overlaps the packages, is left out) and checks that they can be read.
// The error says why there is no CPU energy (no RAPL, or energy_uj readable only by root).
func openRAPL(root string) (*rapl, error) {
	dirs, err := filepath.Glob(filepath.Join(root, "intel-rapl:*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(dirs)
	var r rapl
	for _, d := range dirs {
		if strings.Count(filepath.Base(d), ":") != 1 { // a subdomain (core, uncore, dram)
			continue
		}
		name := readTrim(filepath.Join(d, "name"))
		if name == "psys" {
			continue
		}
		dom := raplDomain{name: name, path: filepath.Join(d, "energy_uj")}
		if v, err := strconv.ParseUint(readTrim(filepath.Join(d, "max_energy_range_uj")), 10, 64); err == nil {
			dom.maxRange = v
		}
		r.domains = append(r.domains, dom)
	}
	if len(r.domains) == 0 {
		return nil, fmt.Errorf("no RAPL package counters under %s", root)
	}
	if _, err := r.read(); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("RAPL counters not readable (%v; root only on most kernels)", err)
		}
		return nil, fmt.Errorf("RAPL counters not readable: %v", err)
	}
	return &r, nil
}

// read returns every domain's energy_uj.
func (r *rapl) read() ([]uint64, error) {
	out := make([]uint64, len(r.domains))
	for i, d := range r.domains {
		b, err := os.ReadFile(d.path)
		if err != nil {
			return nil, err
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.path, err)
		}
		out[i] = v
	}
	return out, nil
}

// joules is the energy between two reads, a counter that wrapped counted once round.
func (r *rapl) joules(a, b []uint64) float64 {
	var uj float64
	for i := range a {
		if b[i] >= a[i] {
			uj += float64(b[i] - a[i])
		} else if m := r.domains[i].maxRange; m > 0 {
			uj += float64(m - a[i] + b[i])
		}
	}
	return uj / 1e6
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
