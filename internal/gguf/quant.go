package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Float32ToFloat16 converts f to IEEE 754 binary16 bits, rounding to nearest with
// ties to even. Values beyond the half range become ±Inf, values at or below half
// the smallest subnormal (2^-25) become ±0, NaN becomes a quiet NaN.
//
// This is F. Giesen's float_to_half_fast3_rtne: normal results round by adding a
// bias to the bits; subnormal results let the float32 adder round, by adding a
// magic number that puts the 10 mantissa bits at the bottom of the float.
func Float32ToFloat16(f float32) uint16 {
	const (
		f32Inf      = 255 << 23
		f16Max      = (127 + 16) << 23                   // 65536.0: at or above becomes Inf
		denormMagic = ((127 - 15) + (23 - 10) + 1) << 23 // 0.5 as a float32 bit pattern
	)
	u := math.Float32bits(f)
	sign := uint16(u>>16) & 0x8000
	u &^= 0x80000000
	switch {
	case u >= f16Max:
		if u > f32Inf {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case u < 113<<23: // below 2^-14: half subnormal or zero
		v := math.Float32frombits(u) + math.Float32frombits(denormMagic)
		return sign | uint16(math.Float32bits(v)-denormMagic)
	default:
		mantOdd := (u >> 13) & 1
		u = u - (127-15)<<23 + 0xfff + mantOdd // rebias the exponent, round half to even
		return sign | uint16(u>>13)
	}
}

// Float16ToFloat32 converts IEEE 754 binary16 bits to float32 (exactly).
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0:
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// Q8_0 block: 32 values stored as a float16 scale d and 32 int8 quants, value = d*q.
const (
	q8_0Values = 32
	q8_0Bytes  = 34
)

// quantizeQ8_0Block encodes 32 values into dst[:34]. The scale is d = max|x|/127
// stored as float16; the quants are computed against the float16-rounded scale,
// q = round(x/d16), so every value decodes to within d16/2 of the input
// (llama.cpp's reference divides by the unrounded d, which is marginally worse).
// Rounding is half away from zero, which is symmetric: -x quantises to -q.
func quantizeQ8_0Block(dst []byte, src []float32) {
	var amax float32
	for _, x := range src[:q8_0Values] {
		amax = max(amax, float32(math.Abs(float64(x))))
	}
	dh := Float32ToFloat16(amax / 127)
	binary.LittleEndian.PutUint16(dst, dh)
	d := Float16ToFloat32(dh)
	q := dst[2:q8_0Bytes]
	if d == 0 {
		clear(q)
		return
	}
	for i, x := range src[:q8_0Values] {
		v := float32(math.Round(float64(x / d)))
		v = min(max(v, -127), 127)
		q[i] = byte(int8(v))
	}
}

// Encode appends src, encoded as type t (F32, F16 or Q8_0), to dst. For Q8_0,
// len(src) must be a multiple of 32.
func Encode(dst []byte, t TensorType, src []float32) ([]byte, error) {
	switch t {
	case F32:
		n := len(dst)
		dst = slices.Grow(dst, 4*len(src))[:n+4*len(src)]
		out := dst[n:]
		for i, x := range src {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
		}
	case F16:
		n := len(dst)
		dst = slices.Grow(dst, 2*len(src))[:n+2*len(src)]
		out := dst[n:]
		for i, x := range src {
			binary.LittleEndian.PutUint16(out[2*i:], Float32ToFloat16(x))
		}
	case Q8_0:
		if len(src)%q8_0Values != 0 {
			return dst, fmt.Errorf("gguf: Q8_0 needs a multiple of %d values, got %d", q8_0Values, len(src))
		}
		for i := 0; i < len(src); i += q8_0Values {
			n := len(dst)
			dst = append(dst, make([]byte, q8_0Bytes)...)
			quantizeQ8_0Block(dst[n:], src[i:])
		}
	default:
		return dst, fmt.Errorf("gguf: encoding %s is not supported", t)
	}
	return dst, nil
}

// Decode appends the values encoded in src as type t (F32, F16 or Q8_0) to dst.
func Decode(dst []float32, t TensorType, src []byte) ([]float32, error) {
	switch t {
	case F32:
		if len(src)%4 != 0 {
			return dst, fmt.Errorf("gguf: F32 data length %d is not a multiple of 4", len(src))
		}
		for i := 0; i < len(src); i += 4 {
			dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(src[i:])))
		}
	case F16:
		if len(src)%2 != 0 {
			return dst, fmt.Errorf("gguf: F16 data length %d is not a multiple of 2", len(src))
		}
		for i := 0; i < len(src); i += 2 {
			dst = append(dst, Float16ToFloat32(binary.LittleEndian.Uint16(src[i:])))
		}
	case Q8_0:
		if len(src)%q8_0Bytes != 0 {
			return dst, fmt.Errorf("gguf: Q8_0 data length %d is not a multiple of %d", len(src), q8_0Bytes)
		}
		for i := 0; i < len(src); i += q8_0Bytes {
			d := Float16ToFloat32(binary.LittleEndian.Uint16(src[i:]))
			for _, q := range src[i+2 : i+q8_0Bytes] {
				dst = append(dst, d*float32(int8(q)))
			}
		}
	default:
		return dst, fmt.Errorf("gguf: decoding %s is not supported", t)
	}
	return dst, nil
}
