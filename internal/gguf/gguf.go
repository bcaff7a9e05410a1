// Package gguf reads and writes GGUF v3 files (the llama.cpp / Ollama model format)
// and synthesises llama-architecture models with random weights for benchmarks.
// TokenTraffic and BytesPerToken compute from a file's tensor directory the weight
// bytes a decoder reads per generated token, the denominator of the
// memory-bandwidth roofline (see Traffic for what counts).
//
// File layout (little-endian throughout):
//
//	magic "GGUF" | uint32 version | uint64 tensor count | uint64 kv count
//	kv count × (string key, uint32 value type, value)
//	tensor count × (string name, uint32 n_dims, n_dims × uint64 dim, uint32 type, uint64 offset)
//	padding to general.alignment (default 32)
//	tensor data: each tensor at its offset (relative to the data start), each
//	offset a multiple of the alignment, tensors padded to the alignment.
//
// Strings are a uint64 byte length followed by the bytes (no terminator). Arrays are
// a uint32 element type, a uint64 count and the elements.
//
// Metadata values are plain Go values: uint8, int8, uint16, int16, uint32, int32,
// uint64, int64, float32, float64, bool and string, and slices of any of these
// ([]string, []float32, []int32, …) for arrays. Reading yields exactly these types,
// so a written file reads back reflect.DeepEqual to what was written.
package gguf

import (
	"fmt"
	"math/bits"
)

// Magic is the four bytes every GGUF file starts with.
const Magic = "GGUF"

// Version is the GGUF version this package writes. Read accepts 2 and 3 (same layout).
const Version = 3

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// KeyAlignment is the metadata key that sets the data alignment (a uint32).
const KeyAlignment = "general.alignment"

// ValueType is a GGUF metadata value type as stored in the file.
type ValueType uint32

// GGUF metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32",
	"float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// scalarSize is the encoded size of a fixed-size scalar type, 0 for string/array/unknown.
func (t ValueType) scalarSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// KV is one metadata key/value pair. Value is one of the Go types listed in the
// package documentation.
type KV struct {
	Key   string
	Value any
}

// valueType reports the GGUF type of a Go value, and for slices the element type.
func valueType(v any) (t, elem ValueType, ok bool) {
	switch v.(type) {
	case uint8:
		return TypeUint8, 0, true
	case int8:
		return TypeInt8, 0, true
	case uint16:
		return TypeUint16, 0, true
	case int16:
		return TypeInt16, 0, true
	case uint32:
		return TypeUint32, 0, true
	case int32:
		return TypeInt32, 0, true
	case float32:
		return TypeFloat32, 0, true
	case bool:
		return TypeBool, 0, true
	case string:
		return TypeString, 0, true
	case uint64:
		return TypeUint64, 0, true
	case int64:
		return TypeInt64, 0, true
	case float64:
		return TypeFloat64, 0, true
	case []uint8:
		return TypeArray, TypeUint8, true
	case []int8:
		return TypeArray, TypeInt8, true
	case []uint16:
		return TypeArray, TypeUint16, true
	case []int16:
		return TypeArray, TypeInt16, true
	case []uint32:
		return TypeArray, TypeUint32, true
	case []int32:
		return TypeArray, TypeInt32, true
	case []float32:
		return TypeArray, TypeFloat32, true
	case []bool:
		return TypeArray, TypeBool, true
	case []string:
		return TypeArray, TypeString, true
	case []uint64:
		return TypeArray, TypeUint64, true
	case []int64:
		return TypeArray, TypeInt64, true
	case []float64:
		return TypeArray, TypeFloat64, true
	}
	return 0, 0, false
}

// TensorType is a ggml tensor data type.
type TensorType uint32

// ggml tensor types (ggml.h). Types 4, 5 and 31–33, 36–38 were removed from ggml.
const (
	F32     TensorType = 0
	F16     TensorType = 1
	Q4_0    TensorType = 2
	Q4_1    TensorType = 3
	Q5_0    TensorType = 6
	Q5_1    TensorType = 7
	Q8_0    TensorType = 8
	Q8_1    TensorType = 9
	Q2_K    TensorType = 10
	Q3_K    TensorType = 11
	Q4_K    TensorType = 12
	Q5_K    TensorType = 13
	Q6_K    TensorType = 14
	Q8_K    TensorType = 15
	IQ2_XXS TensorType = 16
	IQ2_XS  TensorType = 17
	IQ3_XXS TensorType = 18
	IQ1_S   TensorType = 19
	IQ4_NL  TensorType = 20
	IQ3_S   TensorType = 21
	IQ2_S   TensorType = 22
	IQ4_XS  TensorType = 23
	I8      TensorType = 24
	I16     TensorType = 25
	I32     TensorType = 26
	I64     TensorType = 27
	F64     TensorType = 28
	IQ1_M   TensorType = 29
	BF16    TensorType = 30
	TQ1_0   TensorType = 34
	TQ2_0   TensorType = 35
	MXFP4   TensorType = 39
)

type typeTraits struct {
	name      string
	blockSize uint64 // values per block
	typeSize  uint64 // bytes per block
}

var tensorTypes = map[TensorType]typeTraits{
	F32: {"F32", 1, 4}, F16: {"F16", 1, 2},
	Q4_0: {"Q4_0", 32, 18}, Q4_1: {"Q4_1", 32, 20}, Q5_0: {"Q5_0", 32, 22}, Q5_1: {"Q5_1", 32, 24},
	Q8_0: {"Q8_0", 32, 34}, Q8_1: {"Q8_1", 32, 36},
	Q2_K: {"Q2_K", 256, 84}, Q3_K: {"Q3_K", 256, 110}, Q4_K: {"Q4_K", 256, 144},
	Q5_K: {"Q5_K", 256, 176}, Q6_K: {"Q6_K", 256, 210}, Q8_K: {"Q8_K", 256, 292},
	IQ2_XXS: {"IQ2_XXS", 256, 66}, IQ2_XS: {"IQ2_XS", 256, 74}, IQ3_XXS: {"IQ3_XXS", 256, 98},
	IQ1_S: {"IQ1_S", 256, 50}, IQ4_NL: {"IQ4_NL", 32, 18}, IQ3_S: {"IQ3_S", 256, 110},
	IQ2_S: {"IQ2_S", 256, 82}, IQ4_XS: {"IQ4_XS", 256, 136},
	I8: {"I8", 1, 1}, I16: {"I16", 1, 2}, I32: {"I32", 1, 4}, I64: {"I64", 1, 8}, F64: {"F64", 1, 8},
	IQ1_M: {"IQ1_M", 256, 56}, BF16: {"BF16", 1, 2},
	TQ1_0: {"TQ1_0", 256, 54}, TQ2_0: {"TQ2_0", 256, 66}, MXFP4: {"MXFP4", 32, 17},
}

func (t TensorType) String() string {
	if tr, ok := tensorTypes[t]; ok {
		return tr.name
	}
	return fmt.Sprintf("TensorType(%d)", uint32(t))
}

// Known reports whether t is a ggml type this package knows the size of.
func (t TensorType) Known() bool { _, ok := tensorTypes[t]; return ok }

// BlockSize is the number of values per quantisation block (1 for plain types), 0 if unknown.
func (t TensorType) BlockSize() uint64 { return tensorTypes[t].blockSize }

// TypeSize is the number of bytes per block, 0 if unknown.
func (t TensorType) TypeSize() uint64 { return tensorTypes[t].typeSize }

// MaxDims is the most dimensions a ggml tensor has.
const MaxDims = 4

// TensorInfo describes one tensor. Dims are in ggml order: Dims[0] (ne0) is the
// row length, the fastest-varying dimension. Offset is relative to the start of
// the data section.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   TensorType
	Offset uint64
}

// Elements is the number of values in the tensor (1 for zero dimensions). It does
// not check for overflow; see Size.
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Size is the tensor's data size in bytes. It fails for an unknown type, more than
// MaxDims dimensions, a row length that is not a multiple of the type's block size,
// or a size that overflows int64.
func (t TensorInfo) Size() (uint64, error) {
	tr, ok := tensorTypes[t.Type]
	if !ok {
		return 0, fmt.Errorf("tensor %q: unknown tensor type %d", t.Name, uint32(t.Type))
	}
	if len(t.Dims) > MaxDims {
		return 0, fmt.Errorf("tensor %q: %d dimensions, at most %d allowed", t.Name, len(t.Dims), MaxDims)
	}
	n := uint64(1)
	for _, d := range t.Dims {
		hi, lo := bits.Mul64(n, d)
		if hi != 0 || lo > 1<<62 {
			return 0, fmt.Errorf("tensor %q: dimensions %v overflow", t.Name, t.Dims)
		}
		n = lo
	}
	if len(t.Dims) > 0 && t.Dims[0]%tr.blockSize != 0 {
		return 0, fmt.Errorf("tensor %q: row length %d is not a multiple of %s block size %d",
			t.Name, t.Dims[0], tr.name, tr.blockSize)
	}
	hi, size := bits.Mul64(n/tr.blockSize, tr.typeSize)
	if hi != 0 || size > 1<<62 {
		return 0, fmt.Errorf("tensor %q: size overflows", t.Name)
	}
	return size, nil
}

// alignUp rounds n up to a multiple of align (a power of two).
func alignUp(n, align uint64) uint64 { return (n + align - 1) &^ (align - 1) }

// MaxAlignment is the largest general.alignment accepted (real files use 32).
const MaxAlignment = 1 << 20

// validAlignment reports whether a is a usable alignment: a power of two up to MaxAlignment.
func validAlignment(a uint32) bool { return a != 0 && a&(a-1) == 0 && a <= MaxAlignment }
