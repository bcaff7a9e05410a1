package bench

import (
	"math"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/knobs"
)

// REQUEST_RATE_SET makes the levels an open loop: rates (inf included), burstiness, seed and
// cap read as given; bad values are usage errors naming the knob.
func TestServingOptionsOpenLoop(t *testing.T) {
	opt, err := ServingOptions(knobs.Resolve([]string{"REQUEST_RATE_SET=0.5 4,inf", "SERVING_BURSTINESS=0.25", "SERVING_SEED=17", "SERVING_MAX_CONCURRENCY=8"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(opt.Rates) != 3 || opt.Rates[0] != 0.5 || opt.Rates[1] != 4 || !math.IsInf(opt.Rates[2], 1) ||
		opt.Burstiness != 0.25 || opt.Seed != 17 || opt.MaxConcurrency != 8 {
		t.Errorf("%+v", opt)
	}
	if got := levelsText(opt); got != "open loop at 0.5 4 inf requests/s (gamma gaps, burstiness 0.25, seed 17), at most 8 in flight" {
		t.Errorf("levels %q", got)
	}
	def, err := ServingOptions(knobs.Resolve(nil))
	if err != nil || len(def.Rates) != 0 || def.Burstiness != 1 || def.Seed != 0 || def.MaxConcurrency != 0 {
		t.Errorf("defaults %+v %v", def, err)
	}
	for _, bad := range []string{"REQUEST_RATE_SET=0", "REQUEST_RATE_SET=fast", "SERVING_BURSTINESS=0", "SERVING_MAX_CONCURRENCY=-1"} {
		if _, err := ServingOptions(knobs.Resolve([]string{bad})); err == nil || !strings.Contains(err.Error(), strings.Split(bad, "=")[0]) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
