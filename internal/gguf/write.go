package gguf

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// Writer streams a GGUF file. NewWriter takes all metadata and the tensor directory,
// assigns the tensor offsets and writes everything up to the data section; the
// tensors' bytes are then written through Write in directory order, as one
// continuous stream (the Writer inserts the alignment padding between tensors).
// Close checks that every tensor was written completely and flushes.
//
// Memory use is independent of the tensor data size: only a buffer of the
// underlying writer is held.
type Writer struct {
	bw         *bufio.Writer
	tensors    []TensorInfo
	sizes      []uint64
	align      uint64
	dataOffset int64
	fileSize   int64
	cur        int    // tensor being written
	left       uint64 // bytes of tensor cur still to come
	written    int64  // bytes written to bw so far
	err        error  // sticky
	closed     bool
}

// NewWriter validates kv and tensors, computes the tensor offsets (ignoring any
// Offset set in tensors), and writes the header, metadata and tensor directory to w.
// The data alignment is kv's general.alignment (must be a uint32 power of two) or
// DefaultAlignment.
func NewWriter(w io.Writer, kv []KV, tensors []TensorInfo) (*Writer, error) {
	align := uint32(DefaultAlignment)
	keys := make(map[string]bool, len(kv))
	for _, e := range kv {
		if keys[e.Key] {
			return nil, fmt.Errorf("gguf: duplicate metadata key %q", e.Key)
		}
		keys[e.Key] = true
		if _, _, ok := valueType(e.Value); !ok {
			return nil, fmt.Errorf("gguf: metadata %q has unsupported Go type %T", e.Key, e.Value)
		}
		if e.Key == KeyAlignment {
			a, ok := e.Value.(uint32)
			if !ok || !validAlignment(a) {
				return nil, fmt.Errorf("gguf: %s must be a uint32 power of two up to %d, got %T %v", KeyAlignment, MaxAlignment, e.Value, e.Value)
			}
			align = a
		}
	}

	wr := &Writer{align: uint64(align), tensors: make([]TensorInfo, len(tensors)), sizes: make([]uint64, len(tensors))}
	names := make(map[string]bool, len(tensors))
	var off uint64
	for i, t := range tensors {
		if names[t.Name] {
			return nil, fmt.Errorf("gguf: duplicate tensor name %q", t.Name)
		}
		names[t.Name] = true
		size, err := t.Size()
		if err != nil {
			return nil, fmt.Errorf("gguf: %w", err)
		}
		if len(t.Dims) == 0 {
			// ggml accepts it, but other readers (gguf-parser-go) require 1..4.
			return nil, fmt.Errorf("gguf: tensor %q needs at least one dimension", t.Name)
		}
		t.Dims = append([]uint64(nil), t.Dims...)
		t.Offset = off
		wr.tensors[i], wr.sizes[i] = t, size
		off += alignUp(size, wr.align)
		if off > 1<<62 {
			return nil, fmt.Errorf("gguf: total tensor data size overflows")
		}
	}

	wr.bw = bufio.NewWriterSize(w, 1<<20)
	wr.put([]byte(Magic))
	wr.u32(Version)
	wr.u64(uint64(len(wr.tensors)))
	wr.u64(uint64(len(kv)))
	for _, e := range kv {
		wr.str(e.Key)
		wr.value(e.Value)
	}
	for _, t := range wr.tensors {
		wr.str(t.Name)
		wr.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			wr.u64(d)
		}
		wr.u32(uint32(t.Type))
		wr.u64(t.Offset)
	}
	wr.pad()
	if wr.err != nil {
		return nil, wr.err
	}
	wr.dataOffset = wr.written
	wr.fileSize = wr.dataOffset + int64(off)
	wr.cur = -1
	wr.next()
	return wr, nil
}

// Tensors returns the tensor directory with the offsets assigned by NewWriter.
func (w *Writer) Tensors() []TensorInfo { return w.tensors }

// DataOffset is the file offset of the data section.
func (w *Writer) DataOffset() int64 { return w.dataOffset }

// FileSize is the size the complete file will have.
func (w *Writer) FileSize() int64 { return w.fileSize }

// Current returns the index of the tensor the next Write goes to (len(Tensors())
// when all are complete) and how many of its bytes are still expected.
func (w *Writer) Current() (index int, remaining uint64) { return w.cur, w.left }

// next advances to the next tensor with data, writing nothing (padding is written
// when a tensor completes).
func (w *Writer) next() {
	for w.cur++; w.cur < len(w.tensors) && w.sizes[w.cur] == 0; w.cur++ {
	}
	if w.cur < len(w.tensors) {
		w.left = w.sizes[w.cur]
	} else {
		w.left = 0
	}
}

// Write writes tensor data: the tensors' bytes in directory order as one stream.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("gguf: write after Close")
	}
	n := 0
	for len(p) > 0 {
		if w.cur >= len(w.tensors) {
			return n, fmt.Errorf("gguf: %d bytes of tensor data beyond the last tensor", len(p))
		}
		k := uint64(len(p))
		if k > w.left {
			k = w.left
		}
		w.put(p[:k])
		if w.err != nil {
			return n, w.err
		}
		n += int(k)
		p = p[k:]
		w.left -= k
		if w.left == 0 {
			w.pad()
			if w.err != nil {
				return n, w.err
			}
			w.next()
		}
	}
	return n, nil
}

// Close checks that all tensor data was written and flushes the buffer. It does not
// close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if w.cur < len(w.tensors) {
		w.err = fmt.Errorf("gguf: incomplete tensor data: tensor %q is missing %d of %d bytes",
			w.tensors[w.cur].Name, w.left, w.sizes[w.cur])
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = err
		return err
	}
	if w.written != w.fileSize {
		w.err = fmt.Errorf("gguf: internal error: wrote %d bytes, expected %d", w.written, w.fileSize)
	}
	return w.err
}

var zeros [256]byte

func (w *Writer) pad() {
	n := alignUp(uint64(w.written), w.align) - uint64(w.written)
	for n > 0 {
		k := min(n, uint64(len(zeros)))
		w.put(zeros[:k])
		n -= k
	}
}

func (w *Writer) put(p []byte) {
	if w.err != nil {
		return
	}
	n, err := w.bw.Write(p)
	w.written += int64(n)
	w.err = err
}

func (w *Writer) u32(v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	w.put(b[:])
}

func (w *Writer) u64(v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	w.put(b[:])
}

func (w *Writer) str(s string) {
	w.u64(uint64(len(s)))
	if w.err == nil {
		n, err := w.bw.WriteString(s)
		w.written += int64(n)
		w.err = err
	}
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// value writes the type tag and payload of a metadata value (already validated).
func (w *Writer) value(v any) {
	t, elem, _ := valueType(v)
	w.u32(uint32(t))
	if t == TypeArray {
		w.u32(uint32(elem))
		switch a := v.(type) {
		case []string:
			w.u64(uint64(len(a)))
			for _, s := range a {
				w.str(s)
			}
		case []uint8:
			w.u64(uint64(len(a)))
			w.put(a)
		case []int8:
			writeArray(w, a, 1, func(b []byte, x int8) { b[0] = uint8(x) })
		case []bool:
			writeArray(w, a, 1, func(b []byte, x bool) { b[0] = b2u(x) })
		case []uint16:
			writeArray(w, a, 2, func(b []byte, x uint16) { binary.LittleEndian.PutUint16(b, x) })
		case []int16:
			writeArray(w, a, 2, func(b []byte, x int16) { binary.LittleEndian.PutUint16(b, uint16(x)) })
		case []uint32:
			writeArray(w, a, 4, binary.LittleEndian.PutUint32)
		case []int32:
			writeArray(w, a, 4, func(b []byte, x int32) { binary.LittleEndian.PutUint32(b, uint32(x)) })
		case []float32:
			writeArray(w, a, 4, func(b []byte, x float32) { binary.LittleEndian.PutUint32(b, math.Float32bits(x)) })
		case []uint64:
			writeArray(w, a, 8, binary.LittleEndian.PutUint64)
		case []int64:
			writeArray(w, a, 8, func(b []byte, x int64) { binary.LittleEndian.PutUint64(b, uint64(x)) })
		case []float64:
			writeArray(w, a, 8, func(b []byte, x float64) { binary.LittleEndian.PutUint64(b, math.Float64bits(x)) })
		}
		return
	}
	w.scalar(v)
}

// writeArray writes the length and the little-endian elements of a fixed-size array.
func writeArray[T any](w *Writer, a []T, size int, enc func([]byte, T)) {
	w.u64(uint64(len(a)))
	var buf [4096]byte
	for len(a) > 0 {
		k := min(len(a), len(buf)/size)
		for i, x := range a[:k] {
			enc(buf[i*size:], x)
		}
		w.put(buf[:k*size])
		a = a[k:]
	}
}

func (w *Writer) scalar(v any) {
	var b [8]byte
	switch x := v.(type) {
	case uint8:
		w.put([]byte{x})
	case int8:
		w.put([]byte{uint8(x)})
	case bool:
		w.put([]byte{b2u(x)})
	case uint16:
		binary.LittleEndian.PutUint16(b[:], x)
		w.put(b[:2])
	case int16:
		binary.LittleEndian.PutUint16(b[:], uint16(x))
		w.put(b[:2])
	case uint32:
		w.u32(x)
	case int32:
		w.u32(uint32(x))
	case float32:
		w.u32(math.Float32bits(x))
	case uint64:
		w.u64(x)
	case int64:
		w.u64(uint64(x))
	case float64:
		w.u64(math.Float64bits(x))
	case string:
		w.str(x)
	}
}

// DataFunc writes the data of tensor i (info t) to w: exactly t's size in bytes.
// It should return ctx.Err() promptly when ctx is cancelled.
type DataFunc func(ctx context.Context, i int, t TensorInfo, w io.Writer) error

// WriteTo streams a complete GGUF file to dst: the header from kv and tensors, then
// each tensor's bytes from data. It returns the number of bytes written.
func WriteTo(ctx context.Context, dst io.Writer, kv []KV, tensors []TensorInfo, data DataFunc) (int64, error) {
	return writeTo(ctx, dst, kv, tensors, data, nil)
}

// Progress is told, as a file is written, how many of its bytes have reached the destination
// so far, out of its total size.
type Progress func(written, total int64)

// progressWriter counts the bytes that reach the destination and reports them.
type progressWriter struct {
	w        io.Writer
	progress Progress
	n, total int64 // total is 0 until the header is laid out
}

func (pw *progressWriter) Write(p []byte) (int, error) {
	n, err := pw.w.Write(p)
	pw.n += int64(n)
	if pw.total > 0 {
		pw.progress(pw.n, pw.total)
	}
	return n, err
}

func writeTo(ctx context.Context, dst io.Writer, kv []KV, tensors []TensorInfo, data DataFunc, progress Progress) (int64, error) {
	var pw *progressWriter
	if progress != nil {
		pw = &progressWriter{w: dst, progress: progress}
		dst = pw
	}
	w, err := NewWriter(dst, kv, tensors)
	if err != nil {
		return 0, err
	}
	if pw != nil {
		pw.total = w.FileSize()
		progress(pw.n, pw.total)
	}
	for i, t := range w.Tensors() {
		if err := ctx.Err(); err != nil {
			return w.written, err
		}
		tw := &tensorWriter{w: w, name: t.Name, left: w.sizes[i]}
		if err := data(ctx, i, t, tw); err != nil {
			return w.written, err
		}
		if tw.left > 0 {
			return w.written, fmt.Errorf("gguf: tensor %q: %d of %d data bytes missing", t.Name, tw.left, w.sizes[i])
		}
	}
	if err := w.Close(); err != nil {
		return w.written, err
	}
	return w.written, nil
}

// tensorWriter accepts exactly one tensor's bytes.
type tensorWriter struct {
	w    *Writer
	name string
	left uint64
}

func (tw *tensorWriter) Write(p []byte) (int, error) {
	if uint64(len(p)) > tw.left {
		return 0, fmt.Errorf("gguf: tensor %q: %d bytes written beyond its size", tw.name, uint64(len(p))-tw.left)
	}
	n, err := tw.w.Write(p)
	tw.left -= uint64(n)
	return n, err
}

// WriteFile writes a GGUF file at path (see WriteTo) atomically: it writes a
// temporary file in the same directory and renames it to path only when complete,
// so an error or a cancelled ctx never leaves a partial file (the temporary file is
// removed). It returns the file size.
func WriteFile(ctx context.Context, path string, kv []KV, tensors []TensorInfo, data DataFunc) (int64, error) {
	return writeFile(ctx, path, kv, tensors, data, nil)
}

func writeFile(ctx context.Context, path string, kv []KV, tensors []TensorInfo, data DataFunc, progress Progress) (n int64, err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, base+".*.tmp")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if n, err = writeTo(ctx, tmp, kv, tensors, data, progress); err != nil {
		return n, err
	}
	if err = ctx.Err(); err != nil {
		return n, err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return n, err
	}
	if err = tmp.Sync(); err != nil {
		return n, fmt.Errorf("%s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return n, fmt.Errorf("%s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return n, err
	}
	return n, nil
}
