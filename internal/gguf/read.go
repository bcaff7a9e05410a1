package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// File is a parsed GGUF file: its header, metadata and tensor directory. The tensor
// data is not loaded; use TensorReader to read it.
type File struct {
	Version uint32
	KV      []KV
	Tensors []TensorInfo
	// Alignment is general.alignment, or DefaultAlignment when absent.
	Alignment uint32
	// DataOffset is the file offset of the data section; tensor offsets are relative to it.
	DataOffset int64
	// Size is the size of the file in bytes.
	Size int64
}

// Get returns the metadata value stored under key.
func (f *File) Get(key string) (any, bool) {
	for _, kv := range f.KV {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// String returns a string metadata value.
func (f *File) String(key string) (string, bool) {
	v, ok := f.Get(key)
	s, isStr := v.(string)
	return s, ok && isStr
}

// Uint returns an integer metadata value of any integer type, if it is non-negative.
func (f *File) Uint(key string) (uint64, bool) {
	v, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// Tensor returns the tensor named name.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

// TensorReader returns a reader of tensor t's data bytes within r, the file f was read from.
func (f *File) TensorReader(r io.ReaderAt, t TensorInfo) (*io.SectionReader, error) {
	size, err := t.Size()
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(r, f.DataOffset+int64(t.Offset), int64(size)), nil
}

// FormatError is returned for a file that is not valid GGUF (or that this package
// cannot read). It names the file and the byte offset where reading failed.
type FormatError struct {
	Name   string // file name, or "" when unknown
	Offset int64  // byte offset where the problem was found
	Msg    string
	Err    error // underlying error, e.g. io.ErrUnexpectedEOF for truncation
}

func (e *FormatError) Error() string {
	name := e.Name
	if name == "" {
		name = "gguf input"
	}
	return fmt.Sprintf("%s: %s (at byte %d)", name, e.Msg, e.Offset)
}

func (e *FormatError) Unwrap() error { return e.Err }

// Limits that guard allocations against hostile files. Counts are also bounded by
// the bytes left in the file, so a small file can never make the reader allocate much.
const (
	maxKeyLen    = 1 << 16 // metadata keys and tensor names
	maxStringLen = 1 << 28 // a single metadata string (chat templates are ~10 KiB)
	maxArrayLen  = 1 << 28 // elements in one metadata array
	preallocMax  = 1 << 14 // never preallocate more elements than this; grow as data arrives
)

// ReadFile parses the GGUF file at path. Errors name the path.
func ReadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return Read(fh, path)
}

// Read parses a GGUF file from r; name is used in error messages (may be "").
// It reads the header, metadata and tensor directory, and checks that every
// tensor's data lies within the file.
func Read(r io.ReadSeeker, name string) (*File, error) {
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	rd := &reader{br: bufio.NewReaderSize(r, 64<<10), size: size, name: name}
	f, err := rd.file()
	if err != nil {
		return nil, err
	}
	f.Size = size
	return f, nil
}

type reader struct {
	br   *bufio.Reader
	pos  int64
	size int64
	name string
	buf  [8]byte
}

func (r *reader) errf(format string, args ...any) error {
	return &FormatError{Name: r.name, Offset: r.pos, Msg: fmt.Sprintf(format, args...)}
}

// short reports a count or length that cannot fit in the rest of the file.
func (r *reader) short(format string, args ...any) error {
	return &FormatError{Name: r.name, Offset: r.pos, Msg: fmt.Sprintf(format, args...) + " (truncated or corrupt file)", Err: io.ErrUnexpectedEOF}
}

func (r *reader) truncated(what string) error {
	return &FormatError{Name: r.name, Offset: r.pos, Msg: fmt.Sprintf("truncated file: reading %s (file is %d bytes)", what, r.size), Err: io.ErrUnexpectedEOF}
}

func (r *reader) remaining() int64 { return r.size - r.pos }

// full reads exactly len(p) bytes.
func (r *reader) full(p []byte, what string) error {
	n, err := io.ReadFull(r.br, p)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			r.pos += int64(n)
			return r.truncated(what)
		}
		return &FormatError{Name: r.name, Offset: r.pos, Msg: "reading " + what + ": " + err.Error(), Err: err}
	}
	r.pos += int64(n)
	return nil
}

func (r *reader) u32(what string) (uint32, error) {
	if err := r.full(r.buf[:4], what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(r.buf[:4]), nil
}

func (r *reader) u64(what string) (uint64, error) {
	if err := r.full(r.buf[:8], what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(r.buf[:8]), nil
}

func (r *reader) str(what string, max uint64) (string, error) {
	start := r.pos
	n, err := r.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > max {
		r.pos = start
		return "", r.errf("%s length %d exceeds limit %d", what, n, max)
	}
	if n > uint64(r.remaining()) {
		r.pos = start
		return "", r.short("%s length %d but only %d bytes left", what, n, r.remaining())
	}
	b := make([]byte, n)
	if err := r.full(b, what); err != nil {
		return "", err
	}
	return string(b), nil
}

func (r *reader) file() (*File, error) {
	var magic [4]byte
	if err := r.full(magic[:], "magic"); err != nil {
		return nil, err
	}
	if string(magic[:]) != Magic {
		r.pos = 0
		return nil, r.errf("bad magic %q, not a GGUF file (want %q)", magic[:], Magic)
	}
	version, err := r.u32("version")
	if err != nil {
		return nil, err
	}
	if version != 2 && version != 3 {
		r.pos -= 4
		if version&0xFFFF == 0 {
			return nil, r.errf("unsupported GGUF version %#x (big-endian file? only little-endian is supported)", version)
		}
		return nil, r.errf("unsupported GGUF version %d (want 3)", version)
	}
	nTensors, err := r.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := r.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// Every KV takes at least 13 bytes (key length 8, type 4, smallest value 1) and
	// every tensor info at least 24 (name length 8, n_dims 4, type 4, offset 8).
	if nKV > uint64(r.remaining())/13 {
		r.pos -= 8
		return nil, r.short("absurd metadata count %d for a %d-byte file", nKV, r.size)
	}
	if nTensors > uint64(r.remaining())/24 {
		r.pos -= 16
		return nil, r.short("absurd tensor count %d for a %d-byte file", nTensors, r.size)
	}

	f := &File{Version: version, Alignment: DefaultAlignment}
	f.KV = make([]KV, 0, min(nKV, preallocMax))
	seen := make(map[string]bool, min(nKV, preallocMax))
	for i := uint64(0); i < nKV; i++ {
		start := r.pos
		key, err := r.str(fmt.Sprintf("metadata key #%d", i), maxKeyLen)
		if err != nil {
			return nil, err
		}
		if seen[key] {
			r.pos = start
			return nil, r.errf("duplicate metadata key %q", key)
		}
		seen[key] = true
		v, err := r.value(key)
		if err != nil {
			return nil, err
		}
		if key == KeyAlignment {
			a, ok := v.(uint32)
			if !ok {
				r.pos = start
				return nil, r.errf("%s must be a uint32, got %T", KeyAlignment, v)
			}
			if !validAlignment(a) {
				r.pos = start
				return nil, r.errf("%s = %d is not a power of two up to %d", KeyAlignment, a, MaxAlignment)
			}
			f.Alignment = a
		}
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}

	f.Tensors = make([]TensorInfo, 0, min(nTensors, preallocMax))
	names := make(map[string]bool, min(nTensors, preallocMax))
	for i := uint64(0); i < nTensors; i++ {
		start := r.pos
		name, err := r.str(fmt.Sprintf("tensor #%d name", i), maxKeyLen)
		if err != nil {
			return nil, err
		}
		if names[name] {
			r.pos = start
			return nil, r.errf("duplicate tensor name %q", name)
		}
		names[name] = true
		nDims, err := r.u32(fmt.Sprintf("tensor %q dimension count", name))
		if err != nil {
			return nil, err
		}
		if nDims == 0 || nDims > MaxDims {
			return nil, r.errf("tensor %q has %d dimensions, want 1 to %d", name, nDims, MaxDims)
		}
		t := TensorInfo{Name: name, Dims: make([]uint64, nDims)}
		for d := range t.Dims {
			if t.Dims[d], err = r.u64(fmt.Sprintf("tensor %q dimension %d", name, d)); err != nil {
				return nil, err
			}
		}
		typ, err := r.u32(fmt.Sprintf("tensor %q type", name))
		if err != nil {
			return nil, err
		}
		t.Type = TensorType(typ)
		if t.Offset, err = r.u64(fmt.Sprintf("tensor %q offset", name)); err != nil {
			return nil, err
		}
		f.Tensors = append(f.Tensors, t)
	}

	f.DataOffset = int64(alignUp(uint64(r.pos), uint64(f.Alignment)))
	dataSize := r.size - f.DataOffset // may be negative for a truncated file
	for _, t := range f.Tensors {
		size, err := t.Size()
		if err != nil {
			return nil, r.errf("%v", err)
		}
		if t.Offset%uint64(f.Alignment) != 0 {
			return nil, r.errf("tensor %q offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		if t.Offset > 1<<62 || dataSize < 0 || t.Offset+size > uint64(dataSize) {
			return nil, &FormatError{Name: r.name, Offset: r.pos, Err: io.ErrUnexpectedEOF,
				Msg: fmt.Sprintf("truncated file: tensor %q data ends at byte %d but the file is %d bytes",
					t.Name, uint64(f.DataOffset)+t.Offset+size, r.size)}
		}
	}
	return f, nil
}

// value reads one metadata value (type tag and payload) for key.
func (r *reader) value(key string) (any, error) {
	typPos := r.pos
	t, err := r.u32(fmt.Sprintf("type of %q", key))
	if err != nil {
		return nil, err
	}
	if t != uint32(TypeArray) {
		if t > uint32(TypeFloat64) {
			r.pos = typPos
			return nil, r.errf("metadata %q has unknown value type %d", key, t)
		}
		return r.scalar(key, ValueType(t))
	}
	et, err := r.u32(fmt.Sprintf("element type of %q", key))
	if err != nil {
		return nil, err
	}
	elem := ValueType(et)
	if elem == TypeArray {
		r.pos = typPos
		return nil, r.errf("metadata %q is a nested array, which is not supported", key)
	}
	if et > uint32(TypeFloat64) {
		r.pos = typPos
		return nil, r.errf("metadata %q is an array of unknown value type %d", key, et)
	}
	n, err := r.u64(fmt.Sprintf("length of %q", key))
	if err != nil {
		return nil, err
	}
	minSize := uint64(elem.scalarSize())
	if elem == TypeString {
		minSize = 8
	}
	if n > maxArrayLen {
		r.pos -= 8
		return nil, r.errf("array %q length %d exceeds limit %d", key, n, maxArrayLen)
	}
	if n > uint64(r.remaining())/minSize {
		r.pos -= 8
		return nil, r.short("absurd length %d for %s array %q (%d bytes left in file)", n, elem, key, r.remaining())
	}
	switch elem {
	case TypeString:
		out := make([]string, 0, min(n, preallocMax))
		for i := uint64(0); i < n; i++ {
			s, err := r.str(fmt.Sprintf("%s[%d]", key, i), maxStringLen)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	case TypeUint8:
		return readArray(r, key, n, 1, func(b []byte) uint8 { return b[0] })
	case TypeInt8:
		return readArray(r, key, n, 1, func(b []byte) int8 { return int8(b[0]) })
	case TypeUint16:
		return readArray(r, key, n, 2, binary.LittleEndian.Uint16)
	case TypeInt16:
		return readArray(r, key, n, 2, func(b []byte) int16 { return int16(binary.LittleEndian.Uint16(b)) })
	case TypeUint32:
		return readArray(r, key, n, 4, binary.LittleEndian.Uint32)
	case TypeInt32:
		return readArray(r, key, n, 4, func(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) })
	case TypeUint64:
		return readArray(r, key, n, 8, binary.LittleEndian.Uint64)
	case TypeInt64:
		return readArray(r, key, n, 8, func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) })
	case TypeFloat32:
		return readArray(r, key, n, 4, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) })
	case TypeFloat64:
		return readArray(r, key, n, 8, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) })
	case TypeBool:
		out, err := readArray(r, key, n, 1, func(b []byte) uint8 { return b[0] })
		if err != nil {
			return nil, err
		}
		bs := make([]bool, len(out))
		for i, b := range out {
			if b > 1 {
				return nil, r.errf("metadata %q[%d] is not a valid bool (%d)", key, i, b)
			}
			bs[i] = b == 1
		}
		return bs, nil
	}
	return nil, r.errf("metadata %q: unhandled array type %s", key, elem)
}

// readArray reads n fixed-size elements in chunks, growing the slice only as data arrives.
func readArray[T any](r *reader, key string, n uint64, size int, dec func([]byte) T) ([]T, error) {
	out := make([]T, 0, min(n, preallocMax))
	chunk := make([]byte, min(n, 4096)*uint64(size))
	for left := n; left > 0; {
		k := min(left, 4096)
		b := chunk[:k*uint64(size)]
		if err := r.full(b, fmt.Sprintf("array %q", key)); err != nil {
			return nil, err
		}
		for i := 0; i < len(b); i += size {
			out = append(out, dec(b[i:i+size]))
		}
		left -= k
	}
	return out, nil
}

func (r *reader) scalar(key string, t ValueType) (any, error) {
	if t == TypeString {
		return r.str(fmt.Sprintf("value of %q", key), maxStringLen)
	}
	size := t.scalarSize()
	b := r.buf[:size]
	if err := r.full(b, fmt.Sprintf("value of %q", key)); err != nil {
		return nil, err
	}
	switch t {
	case TypeUint8:
		return b[0], nil
	case TypeInt8:
		return int8(b[0]), nil
	case TypeUint16:
		return binary.LittleEndian.Uint16(b), nil
	case TypeInt16:
		return int16(binary.LittleEndian.Uint16(b)), nil
	case TypeUint32:
		return binary.LittleEndian.Uint32(b), nil
	case TypeInt32:
		return int32(binary.LittleEndian.Uint32(b)), nil
	case TypeUint64:
		return binary.LittleEndian.Uint64(b), nil
	case TypeInt64:
		return int64(binary.LittleEndian.Uint64(b)), nil
	case TypeFloat32:
		return math.Float32frombits(binary.LittleEndian.Uint32(b)), nil
	case TypeFloat64:
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case TypeBool:
		if b[0] > 1 {
			r.pos--
			return nil, r.errf("metadata %q is not a valid bool (%d)", key, b[0])
		}
		return b[0] == 1, nil
	}
	return nil, r.errf("metadata %q: unhandled type %s", key, t)
}
