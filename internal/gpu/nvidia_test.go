//go:build nvidia

// Run on a GPU host with: go test -tags nvidia -run TestRealInventory -v ./internal/gpu/

package gpu

import (
	"os"
	"strings"
	"testing"
)

func TestRealInventory(t *testing.T) {
	gpus, err := Inventory(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) == 0 {
		t.Fatal("no GPUs found; this test needs a GPU host")
	}
	for _, g := range gpus {
		bw, ok := PeakBandwidth(g.Name)
		t.Logf("%+v  peak bandwidth %g (%v)", g, bw, ok)
		if !labelRE.MatchString(g.Label) || !strings.HasPrefix(g.UUID, "GPU-") || g.MemoryMiB <= 0 || g.Driver == "" {
			t.Errorf("implausible %+v", g)
		}
	}
	sel, warnings, err := Select(gpus, OptionsFromEnv(os.Getenv))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("A=%v B=%v warnings=%q", sel.A, sel.B, warnings)
}
