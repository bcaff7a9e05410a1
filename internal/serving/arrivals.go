package serving

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Arrivals draws the gaps between an open loop's request arrivals as `vllm bench serve
// --request-rate R --burstiness B` does: gamma-distributed with shape B and mean 1/R, so B = 1
// is a Poisson process (exponential gaps), B < 1 burstier, B > 1 more regular. The draws come
// from a PCG generator seeded with Seed, so a run with the same seed offers the same schedule
// (and tests can predict it); the seed is recorded with every level.
type Arrivals struct {
	Rate       float64 // requests per second; +Inf: every request at once (no gap)
	Burstiness float64 // gamma shape; ≤ 0: 1
	rng        *rand.Rand
}

// NewArrivals is the schedule of rate, burstiness and seed.
func NewArrivals(rate, burstiness float64, seed uint64) *Arrivals {
	if burstiness <= 0 {
		burstiness = 1
	}
	return &Arrivals{Rate: rate, Burstiness: burstiness, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Next is the gap before the next arrival.
func (a *Arrivals) Next() time.Duration {
	if math.IsInf(a.Rate, 1) || a.Rate <= 0 {
		return 0
	}
	mean := 1 / a.Rate
	var x float64 // a gamma(shape B, scale 1) draw: its mean is B
	if a.Burstiness == 1 {
		x = a.rng.ExpFloat64()
	} else {
		x = gamma(a.rng, a.Burstiness)
	}
	return time.Duration(x / a.Burstiness * mean * float64(time.Second))
}

// gamma draws from gamma(shape k, scale 1) by Marsaglia and Tsang's method ("A simple method
// for generating gamma variables", 2000); for k < 1 by drawing gamma(k+1) and scaling by
// U^(1/k), as they show.
func gamma(rng *rand.Rand, k float64) float64 {
	if k < 1 {
		u := rng.Float64()
		for u == 0 {
			u = rng.Float64()
		}
		return gamma(rng, k+1) * math.Pow(u, 1/k)
	}
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		var x, v float64
		for v <= 0 {
			x = rng.NormFloat64()
			v = 1 + c*x
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || (u > 0 && math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v))) {
			return d * v
		}
	}
}

// FormatRate is an offered rate as the CSV and the console write it: "inf" for every request at
// once, else the rate with the digits it needs; "" for a closed loop (0).
func FormatRate(r float64) string {
	switch {
	case r == 0:
		return ""
	case math.IsInf(r, 1):
		return "inf"
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// ParseRate reads a rate written by FormatRate or given in REQUEST_RATE_SET ("inf" or a number
// > 0); "" is 0, a closed loop.
func ParseRate(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "":
		return 0, true
	case "inf", "+inf":
		return math.Inf(1), true
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// Name is how the console names the level: "c=4" for a closed loop; for an open loop
// "rate=2.5/s" with ", cap 8" when capped and ", burstiness 0.5" when not Poisson.
func (l *Level) Name() string {
	o := l.Open
	if o == nil {
		return fmt.Sprintf("c=%d", l.Concurrency)
	}
	s := "rate=" + FormatRate(float64(o.Rate)) + "/s"
	if o.MaxConcurrency > 0 {
		s += fmt.Sprintf(", cap %d", o.MaxConcurrency)
	}
	if o.Burstiness != 1 {
		s += ", burstiness " + strconv.FormatFloat(o.Burstiness, 'f', -1, 64)
	}
	return s
}
