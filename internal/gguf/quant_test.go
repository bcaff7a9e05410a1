package gguf

import (
	"math"
	"testing"
)

func TestFloat16Table(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, c := range []struct {
		f float32
		h uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},                              // largest half
		{65519.99, 0x7bff},                           // rounds down to the largest
		{65520, 0x7c00},                              // ties to even: overflows to Inf
		{1e6, 0x7c00},                                // overflow
		{-1e6, 0xfc00},                               // negative overflow
		{inf, 0x7c00},                                //
		{-inf, 0xfc00},                               //
		{6.103515625e-05, 0x0400},                    // smallest normal 2^-14
		{5.960464477539063e-08, 0x0001},              // smallest subnormal 2^-24
		{2.9802322387695312e-08, 0x0000},             // 2^-25: tie, rounds to even (0)
		{2.9802326e-08, 0x0001},                      // just above 2^-25 rounds up
		{8.940696716308594e-08, 0x0002},              // 1.5 * 2^-24: tie, rounds to even (2)
		{6.097555160522461e-05, 0x03ff},              // largest subnormal
		{6.1005353927612305e-05, 0x0400},             // between largest subnormal and smallest normal: ties to even
		{1.0009765625, 0x3c01},                       // 1 + 2^-10
		{1.00048828125, 0x3c00},                      // 1 + 2^-11: tie, round to even (down)
		{1.00146484375, 0x3c02},                      // 1 + 3*2^-11: tie, round to even (up)
		{math.Nextafter32(1.00048828125, 2), 0x3c01}, // just above the tie rounds up
		{0.1, 0x2e66},                                //
		{-0.02, 0xa51f},                              //
		{3.140625, 0x4248},                           //
		{float32(math.Pi), 0x4248},                   //
		{2049, 0x6800},                               // 2048 + 1: tie, to even (2048)
		{2051, 0x6802},                               // 2048 + 3: tie, to even (2052)
	} {
		if got := Float32ToFloat16(c.f); got != c.h {
			t.Errorf("Float32ToFloat16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	if h := Float32ToFloat16(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("NaN -> %#04x", h)
	}
	if f := Float16ToFloat32(0x7e00); !math.IsNaN(float64(f)) {
		t.Errorf("0x7e00 -> %g", f)
	}
}

// TestFloat16Exhaustive checks every half: half -> float32 -> half is the identity
// (except NaNs), float32 -> half picks the nearest half for midpoints between
// neighbours, and the conversion is sign-symmetric.
func TestFloat16Exhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := Float16ToFloat32(uint16(h))
		if math.IsNaN(float64(f)) {
			if h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
				t.Fatalf("%#04x decoded to NaN", h)
			}
			continue
		}
		if back := Float32ToFloat16(f); back != uint16(h) {
			t.Fatalf("%#04x -> %g -> %#04x", h, f, back)
		}
		if Float32ToFloat16(-f) != uint16(h)^0x8000 {
			t.Fatalf("not sign-symmetric at %#04x", h)
		}
		// Values a little inside the interval towards the next half round back to h.
		if h&0x7fff < 0x7bff {
			next := Float16ToFloat32(uint16(h + 1))
			mid := (float64(f) + float64(next)) / 2
			below := float32(mid - (mid-float64(f))/4)
			if f != 0 || h == 0 {
				if got := Float32ToFloat16(below); got != uint16(h) {
					t.Fatalf("%g (just below the midpoint after %#04x) -> %#04x", below, h, got)
				}
			}
			above := float32(mid + (float64(next)-mid)/4)
			if got := Float32ToFloat16(above); got != uint16(h+1) {
				t.Fatalf("%g (just above the midpoint after %#04x) -> %#04x", above, h, got)
			}
			// The exact midpoint goes to the even one.
			want := uint16(h)
			if h&1 == 1 {
				want = uint16(h + 1)
			}
			if got := Float32ToFloat16(float32(mid)); float64(float32(mid)) == mid && got != want {
				t.Fatalf("midpoint %g between %#04x and %#04x -> %#04x, want %#04x", mid, h, h+1, got, want)
			}
		}
	}
}

// refFloat32ToFloat16 is a straightforward bit-manipulation conversion, kept as a
// reference for the fast one. It converts f to IEEE 754 binary16 bits, rounding to nearest with
// ties to even. Values beyond the half range become ±Inf, values below half the
// smallest subnormal (2^-25) become ±0, NaN stays NaN (quiet).
func refFloat32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff { // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // biased half exponent
	if e >= 0x1f {
		return sign | 0x7c00 // overflow
	}
	if e <= 0 {
		// Half subnormal (or zero): value = half * 2^-24.
		if e < -10 {
			return sign // below 2^-25: rounds to zero
		}
		m := mant | 0x800000 // 24-bit significand, value = m * 2^(exp-150)
		shift := uint32(14 - e)
		half := m >> shift
		rem := m & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rem > halfway || (rem == halfway && half&1 == 1) {
			half++ // may carry into the smallest normal, which is the right encoding
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // a carry into the exponent is correct, up to 0x7c00 (Inf)
	}
	return sign | uint16(half)
}

func TestFloat16AgainstReference(t *testing.T) {
	st := uint64(11)
	check := func(u uint32) {
		f := math.Float32frombits(u)
		got, want := Float32ToFloat16(f), refFloat32ToFloat16(f)
		if math.IsNaN(float64(f)) {
			if got&0x7c00 != 0x7c00 || got&0x3ff == 0 || got&0x8000 != want&0x8000 {
				t.Fatalf("NaN %#08x -> %#04x", u, got)
			}
			return
		}
		if got != want {
			t.Fatalf("%g (%#08x): %#04x, reference %#04x", f, u, got, want)
		}
	}
	for i := 0; i < 1<<21; i++ {
		r := wyrand(&st)
		check(uint32(r))
		// Concentrate on the interesting exponents (subnormal to overflow).
		check(uint32(r>>32)&0x807fffff | uint32(96+(r>>24)%48)<<23)
	}
}

func TestQ8_0(t *testing.T) {
	vals := make([]float32, 32*64)
	st := uint64(42)
	for i := range vals {
		scale := float32(1)
		switch (i / 32) % 4 {
		case 1:
			scale = 1e-3
		case 2:
			scale = 100
		case 3:
			scale = 1e-7 // scale underflows to a half subnormal
		}
		vals[i] = (float32(wyrand(&st)>>40)/(1<<24)*2 - 1) * scale
	}
	for i := 32 * 60; i < 32*61; i++ {
		vals[i] = 0 // an all-zero block
	}
	enc, err := Encode(nil, Q8_0, vals)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != len(vals)/32*34 {
		t.Fatalf("encoded %d bytes", len(enc))
	}
	dec, err := Decode(nil, Q8_0, enc)
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < len(vals); b += 32 {
		d := Float16ToFloat32(uint16(enc[b/32*34]) | uint16(enc[b/32*34+1])<<8)
		var amax float32
		for _, x := range vals[b : b+32] {
			amax = max(amax, float32(math.Abs(float64(x))))
		}
		if want := Float16ToFloat32(Float32ToFloat16(amax / 127)); d != want {
			t.Fatalf("block %d: d = %g, want fp16(max/127) = %g", b/32, d, want)
		}
		for i := b; i < b+32; i++ {
			tol := d/2 + d*1e-6
			if d == 0 {
				tol = amax // everything quantises to 0 when the scale underflows
			}
			if diff := float32(math.Abs(float64(dec[i] - vals[i]))); diff > tol {
				t.Fatalf("value %d: %g decoded as %g (d %g, error %g > d/2)", i, vals[i], dec[i], d, diff)
			}
		}
	}
	// -x quantises to exactly -q (needed for the logit pairs).
	neg := make([]float32, len(vals))
	for i, x := range vals {
		neg[i] = -x
	}
	encNeg, _ := Encode(nil, Q8_0, neg)
	decNeg, _ := Decode(nil, Q8_0, encNeg)
	for i := range dec {
		if decNeg[i] != -dec[i] {
			t.Fatalf("value %d: -x decodes to %g, x to %g", i, decNeg[i], dec[i])
		}
	}
	if _, err := Encode(nil, Q8_0, vals[:31]); err == nil {
		t.Errorf("31 values encoded as Q8_0")
	}
}

func TestEncodeDecodeF32F16(t *testing.T) {
	vals := []float32{0, 1, -1, 0.02, -0.02, 1e-8, 65504, 3.3}
	for _, typ := range []TensorType{F32, F16} {
		enc, err := Encode(nil, typ, vals)
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) != len(vals)*int(typ.TypeSize()) {
			t.Fatalf("%s: %d bytes", typ, len(enc))
		}
		dec, _ := Decode(nil, typ, enc)
		for i, x := range vals {
			want := x
			if typ == F16 {
				want = Float16ToFloat32(Float32ToFloat16(x))
			}
			if dec[i] != want {
				t.Errorf("%s: %g -> %g", typ, x, dec[i])
			}
		}
	}
	if _, err := Encode(nil, Q4_0, vals); err == nil {
		t.Errorf("Q4_0 encode succeeded")
	}
}
