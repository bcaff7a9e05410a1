package gguf

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	parser "github.com/gpustack/gguf-parser-go"
)

// allTypesKV has one metadata value of every scalar and array type.
func allTypesKV() []KV {
	return []KV{
		{"general.architecture", "llama"},
		{"t.u8", uint8(200)}, {"t.i8", int8(-100)},
		{"t.u16", uint16(60000)}, {"t.i16", int16(-30000)},
		{"t.u32", uint32(4000000000)}, {"t.i32", int32(-2000000000)},
		{"t.u64", uint64(1) << 63}, {"t.i64", int64(-1) << 62},
		{"t.f32", float32(3.25)}, {"t.f64", math.Pi},
		{"t.true", true}, {"t.false", false},
		{"t.str", "héllo ▁ wörld"}, {"t.empty", ""},
		{"t.au8", []uint8{0, 1, 255}}, {"t.ai8", []int8{-128, 0, 127}},
		{"t.au16", []uint16{0, 65535}}, {"t.ai16", []int16{-32768, 32767}},
		{"t.au32", []uint32{1, 2, 3}}, {"t.ai32", []int32{-1, 0, 1}},
		{"t.au64", []uint64{math.MaxUint64}}, {"t.ai64", []int64{math.MinInt64, math.MaxInt64}},
		{"t.af32", []float32{-1.5, 0, float32(math.Inf(1))}}, {"t.af64", []float64{1e300, -1e-300}},
		{"t.abool", []bool{true, false, true}},
		{"t.astr", []string{"a", "", "<0x0A>", "▁the"}},
		{"t.aempty", []string{}},
		{KeyAlignment, uint32(64)},
	}
}

// testTensors returns tensors of F32, F16, Q8_0 (plus a zero-size one) and their data.
func testTensors() ([]TensorInfo, [][]byte) {
	vals := make([]float32, 96)
	for i := range vals {
		vals[i] = float32(i)*0.01 - 0.3
	}
	tensors := []TensorInfo{
		{Name: "a.f32", Dims: []uint64{3, 5}, Type: F32},
		{Name: "b.f16", Dims: []uint64{7}, Type: F16},
		{Name: "c.empty", Dims: []uint64{0, 4}, Type: F32},
		{Name: "d.q8_0", Dims: []uint64{32, 3}, Type: Q8_0},
		{Name: "e.one", Dims: []uint64{1}, Type: F32},
	}
	var data [][]byte
	for _, ti := range tensors {
		b, err := Encode(nil, ti.Type, vals[:ti.Elements()])
		if err != nil {
			panic(err)
		}
		data = append(data, b)
	}
	return tensors, data
}

func writeBytes(t *testing.T, kv []KV, tensors []TensorInfo, data [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := WriteTo(context.Background(), &buf, kv, tensors, func(_ context.Context, i int, _ TensorInfo, w io.Writer) error {
		_, err := w.Write(data[i])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	kv := allTypesKV()
	tensors, data := testTensors()
	b := writeBytes(t, kv, tensors, data)

	f, err := Read(bytes.NewReader(b), "mem.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || f.Alignment != 64 || f.DataOffset%64 != 0 || f.Size != int64(len(b)) {
		t.Fatalf("header: version %d alignment %d data offset %d size %d", f.Version, f.Alignment, f.DataOffset, f.Size)
	}
	if !reflect.DeepEqual(f.KV, kv) {
		t.Fatalf("metadata differs:\n got %#v\nwant %#v", f.KV, kv)
	}
	if len(f.Tensors) != len(tensors) {
		t.Fatalf("got %d tensors", len(f.Tensors))
	}
	var off uint64
	for i, got := range f.Tensors {
		want := tensors[i]
		if got.Name != want.Name || got.Type != want.Type || len(got.Dims) != len(want.Dims) {
			t.Fatalf("tensor %d: got %+v want %+v", i, got, want)
		}
		for d := range got.Dims {
			if got.Dims[d] != want.Dims[d] {
				t.Fatalf("tensor %d dims %v want %v", i, got.Dims, want.Dims)
			}
		}
		if got.Offset != off {
			t.Errorf("tensor %q offset %d, want %d", got.Name, got.Offset, off)
		}
		off += alignUp(uint64(len(data[i])), 64)
		sr, err := f.TensorReader(bytes.NewReader(b), got)
		if err != nil {
			t.Fatal(err)
		}
		gotData, err := io.ReadAll(sr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gotData, data[i]) {
			t.Errorf("tensor %q data differs", got.Name)
		}
	}
	if f.DataOffset+int64(off) != int64(len(b)) {
		t.Errorf("file size %d, want data offset %d + padded data %d", len(b), f.DataOffset, off)
	}
	// Padding bytes are zero.
	for i, ti := range f.Tensors {
		start := f.DataOffset + int64(ti.Offset) + int64(len(data[i]))
		end := f.DataOffset + int64(alignUp(ti.Offset+uint64(len(data[i])), 64))
		if !bytes.Equal(b[start:end], make([]byte, end-start)) {
			t.Errorf("padding after %q not zero", ti.Name)
		}
	}
	if s, ok := f.String("t.str"); !ok || s != "héllo ▁ wörld" {
		t.Errorf("String = %q %v", s, ok)
	}
	if u, ok := f.Uint("t.u32"); !ok || u != 4000000000 {
		t.Errorf("Uint = %d %v", u, ok)
	}
	if _, ok := f.Uint("t.i8"); ok {
		t.Errorf("Uint of a negative int8 succeeded")
	}
	if _, ok := f.Tensor("d.q8_0"); !ok {
		t.Errorf("Tensor(d.q8_0) not found")
	}
}

// TestIndependentParser checks that gguf-parser-go reads what we write.
func TestIndependentParser(t *testing.T) {
	kv := allTypesKV()
	tensors, data := testTensors()
	path := filepath.Join(t.TempDir(), "all.gguf")
	if err := os.WriteFile(path, writeBytes(t, kv, tensors, data), 0o644); err != nil {
		t.Fatal(err)
	}
	gf, err := parser.ParseGGUFFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if gf.Header.Version != parser.GGUFVersionV3 || gf.Header.TensorCount != uint64(len(tensors)) ||
		gf.Header.MetadataKVCount != uint64(len(kv)) {
		t.Fatalf("header %+v", gf.Header)
	}
	for _, e := range kv {
		got, ok := gf.Header.MetadataKV.Get(e.Key)
		if !ok {
			t.Errorf("key %q missing", e.Key)
			continue
		}
		var v any
		if got.ValueType == parser.GGUFMetadataValueTypeArray {
			arr := got.ValueArray()
			rv := reflect.ValueOf(e.Value)
			if arr.Len != uint64(rv.Len()) {
				t.Errorf("%q: len %d want %d", e.Key, arr.Len, rv.Len())
			}
			for i, x := range arr.Array {
				if fmt.Sprint(x) != fmt.Sprint(rv.Index(i).Interface()) {
					t.Errorf("%q[%d] = %v want %v", e.Key, i, x, rv.Index(i))
				}
			}
			continue
		}
		v = got.Value
		if fmt.Sprintf("%T %v", v, v) != fmt.Sprintf("%T %v", e.Value, e.Value) {
			t.Errorf("%q = %T %v want %T %v", e.Key, v, v, e.Value, e.Value)
		}
	}
	for i, ti := range gf.TensorInfos {
		want := tensors[i]
		if ti.Name != want.Name || uint32(ti.Type) != uint32(want.Type) || fmt.Sprint(ti.Dimensions) != fmt.Sprint(append([]uint64{}, want.Dims...)) {
			t.Errorf("tensor %d: %s %v %v, want %s %v %v", i, ti.Name, ti.Type, ti.Dimensions, want.Name, want.Type, want.Dims)
		}
	}
}

func TestWriterErrors(t *testing.T) {
	ok := []TensorInfo{{Name: "x", Dims: []uint64{32}, Type: Q8_0}}
	for name, c := range map[string]struct {
		kv      []KV
		tensors []TensorInfo
		want    string
	}{
		"dup key":         {[]KV{{"a", uint8(1)}, {"a", uint8(2)}}, ok, "duplicate metadata key"},
		"bad go type":     {[]KV{{"a", 3}}, ok, "unsupported Go type int"},
		"bad align type":  {[]KV{{KeyAlignment, uint64(32)}}, ok, "power of two"},
		"align not pow2":  {[]KV{{KeyAlignment, uint32(48)}}, ok, "power of two"},
		"dup tensor":      {nil, append(ok, ok[0]), "duplicate tensor name"},
		"q8_0 row length": {nil, []TensorInfo{{Name: "y", Dims: []uint64{33}, Type: Q8_0}}, "not a multiple"},
		"unknown type":    {nil, []TensorInfo{{Name: "y", Dims: []uint64{1}, Type: 4}}, "unknown tensor type"},
		"too many dims":   {nil, []TensorInfo{{Name: "y", Dims: []uint64{1, 1, 1, 1, 1}, Type: F32}}, "at most 4"},
		"no dims":         {nil, []TensorInfo{{Name: "y", Type: F32}}, "at least one dimension"},
		"overflow":        {nil, []TensorInfo{{Name: "y", Dims: []uint64{1 << 40, 1 << 40}, Type: F32}}, "overflow"},
	} {
		if _, err := NewWriter(io.Discard, c.kv, c.tensors); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}

	two := []TensorInfo{{Name: "a", Dims: []uint64{4}, Type: F32}, {Name: "b", Dims: []uint64{2}, Type: F16}}
	// Too little data.
	w, err := NewWriter(io.Discard, nil, two)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 17)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), `"b" is missing 3 of 4 bytes`) {
		t.Errorf("short data: %v", err)
	}
	// Too much data.
	w, _ = NewWriter(io.Discard, nil, two)
	if _, err := w.Write(make([]byte, 21)); err == nil {
		t.Errorf("overlong write succeeded")
	}
	// A DataFunc writing into the next tensor is caught.
	_, err = WriteTo(context.Background(), io.Discard, nil, two, func(_ context.Context, i int, _ TensorInfo, w io.Writer) error {
		_, err := w.Write(make([]byte, 20))
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "beyond its size") {
		t.Errorf("spill into next tensor: %v", err)
	}
	// A DataFunc writing too little is caught.
	_, err = WriteTo(context.Background(), io.Discard, nil, two, func(context.Context, int, TensorInfo, io.Writer) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("short DataFunc: %v", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	tensors := []TensorInfo{{Name: "a", Dims: []uint64{4}, Type: F32}, {Name: "b", Dims: []uint64{4}, Type: F32}}
	boom := errors.New("boom")
	_, err := WriteFile(context.Background(), path, nil, tensors, func(_ context.Context, i int, _ TensorInfo, w io.Writer) error {
		if i == 1 {
			return boom
		}
		_, err := w.Write(make([]byte, 16))
		return err
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err = WriteFile(ctx, path, nil, tensors, func(_ context.Context, i int, _ TensorInfo, w io.Writer) error {
		cancel()
		_, err := w.Write(make([]byte, 16))
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("files left behind: %v", ents)
	}
	n, err := WriteFile(context.Background(), path, nil, tensors, func(_ context.Context, i int, _ TensorInfo, w io.Writer) error {
		_, err := w.Write(make([]byte, 16))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != n {
		t.Fatalf("stat: %v, size vs %d", err, n)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("dir has %v", ents)
	}
}

// header builds raw GGUF bytes for hostile-input tests.
type raw struct{ bytes.Buffer }

func (r *raw) u32(v uint32) *raw { binary.Write(&r.Buffer, binary.LittleEndian, v); return r }
func (r *raw) u64(v uint64) *raw { binary.Write(&r.Buffer, binary.LittleEndian, v); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.WriteString(s); return r }
func hdr(nt, nkv uint64) *raw {
	r := &raw{}
	r.WriteString("GGUF")
	return r.u32(3).u64(nt).u64(nkv)
}

func TestReadBadInput(t *testing.T) {
	ts, td := testTensors()
	valid := writeBytes(t, allTypesKV(), ts, td)
	pad := func(r *raw) []byte { return append(r.Bytes(), make([]byte, 64)...) }
	cases := map[string]struct {
		b    []byte
		want string
	}{
		"empty":          {nil, "truncated"},
		"bad magic":      {append([]byte("GGML"), valid[4:]...), "bad magic"},
		"version 1":      {func() []byte { r := &raw{}; r.WriteString("GGUF"); return pad(r.u32(1).u64(0).u64(0)) }(), "unsupported GGUF version 1"},
		"version 4":      {func() []byte { r := &raw{}; r.WriteString("GGUF"); return pad(r.u32(4).u64(0).u64(0)) }(), "unsupported GGUF version 4"},
		"big endian":     {func() []byte { r := &raw{}; r.WriteString("GGUF"); return pad(r.u32(3 << 24).u64(0).u64(0)) }(), "big-endian"},
		"huge kv count":  {pad(hdr(0, 1<<62)), "absurd metadata count"},
		"huge tensors":   {pad(hdr(1<<40, 0)), "absurd tensor count"},
		"huge key":       {pad(hdr(0, 1).u64(1 << 60)), "exceeds limit"},
		"key past end":   {append(hdr(0, 1).u64(1000).Bytes(), make([]byte, 20)...), "bytes left"},
		"huge string":    {pad(hdr(0, 1).str("k").u32(uint32(TypeString)).u64(1 << 40)), "exceeds limit"},
		"huge array":     {pad(hdr(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeUint32)).u64(1 << 20)), "absurd length"},
		"over max array": {pad(hdr(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeUint8)).u64(1 << 40)), "exceeds limit"},
		"huge str array": {pad(hdr(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(1 << 20)), "absurd length"},
		"nested array":   {pad(hdr(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeArray)).u64(1)), "nested array"},
		"bad type":       {pad(hdr(0, 1).str("k").u32(13)), "unknown value type 13"},
		"bad bool":       {pad(hdr(0, 1).str("k").u32(uint32(TypeBool)).u32(2)), "not a valid bool"},
		"dup key":        {pad(hdr(0, 2).str("k").u32(uint32(TypeUint32)).u32(0).str("k").u32(uint32(TypeUint32)).u32(0)), "duplicate metadata key"},
		"bad alignment":  {pad(hdr(0, 1).str(KeyAlignment).u32(uint32(TypeUint32)).u32(24)), "not a power of two"},
		"huge alignment": {pad(hdr(0, 1).str(KeyAlignment).u32(uint32(TypeUint32)).u32(1 << 30)), "not a power of two up to"},
		"alignment type": {pad(hdr(0, 1).str(KeyAlignment).u32(uint32(TypeUint64)).u64(32)), "must be a uint32"},
		"too many dims":  {pad(hdr(1, 0).str("t").u32(5)), "has 5 dimensions, want 1 to 4"},
		"zero dims":      {pad(hdr(1, 0).str("t").u32(0)), "has 0 dimensions"},
		"unknown ttype":  {pad(hdr(1, 0).str("t").u32(1).u64(4).u32(4).u64(0)), "unknown tensor type 4"},
		"tensor overflow": {pad(hdr(1, 0).str("t").u32(2).u64(1 << 40).u64(1 << 40).u32(0).u64(0)),
			"overflow"},
		"misaligned":    {pad(hdr(1, 0).str("t").u32(1).u64(1).u32(0).u64(4)), "not a multiple of the alignment"},
		"data past end": {pad(hdr(1, 0).str("t").u32(1).u64(1000).u32(0).u64(0)), "truncated file: tensor \"t\""},
		"dup tensor":    {pad(hdr(2, 0).str("t").u32(1).u64(1).u32(0).u64(0).str("t").u32(1).u64(1).u32(0).u64(32)), "duplicate tensor name"},
	}
	for name, c := range cases {
		_, err := Read(bytes.NewReader(c.b), "bad.gguf")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "bad.gguf: ") {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
		var fe *FormatError
		if err != nil && !errors.As(err, &fe) {
			t.Errorf("%s: %T is not a *FormatError", name, err)
		}
	}
	// Every truncation of a valid file before the end of the last tensor's data is
	// an error wrapping io.ErrUnexpectedEOF (cutting trailing padding is harmless).
	f, err := Read(bytes.NewReader(valid), "")
	if err != nil {
		t.Fatal(err)
	}
	last := f.Tensors[len(f.Tensors)-1]
	lastSize, _ := last.Size()
	dataEnd := int(f.DataOffset + int64(last.Offset+lastSize))
	for n := 0; n < len(valid); n++ {
		if n >= dataEnd {
			if _, err := Read(bytes.NewReader(valid[:n]), "cut.gguf"); err != nil {
				t.Fatalf("cut to %d bytes (data ends at %d): %v", n, dataEnd, err)
			}
			continue
		}
		_, err := Read(bytes.NewReader(valid[:n]), "cut.gguf")
		if err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(valid))
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("truncated to %d bytes: %v does not wrap io.ErrUnexpectedEOF", n, err)
		}
	}
}

func TestReadFileNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junk.gguf")
	os.WriteFile(path, []byte("not a gguf file at all"), 0o644)
	_, err := ReadFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "bad magic") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzRead(f *testing.F) {
	tensors, data := testTensors()
	var buf bytes.Buffer
	if _, err := WriteTo(context.Background(), &buf, allTypesKV(), tensors, func(_ context.Context, i int, _ TensorInfo, w io.Writer) error {
		_, err := w.Write(data[i])
		return err
	}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(hdr(0, 0).Bytes())
	f.Add(hdr(1, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(2).str("a").str("b").
		str("t").u32(2).u64(32).u64(2).u32(uint32(Q8_0)).u64(0).Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Read(bytes.NewReader(b), "fuzz")
		if err != nil || file.Alignment > 256 {
			return // (a huge alignment would make re-encoding write megabytes of padding)
		}
		// Whatever parses must re-encode and parse to the same thing.
		var out bytes.Buffer
		_, err = WriteTo(context.Background(), &out, file.KV, file.Tensors, func(_ context.Context, _ int, ti TensorInfo, w io.Writer) error {
			sr, err := file.TensorReader(bytes.NewReader(b), ti)
			if err != nil {
				return err
			}
			_, err = io.Copy(w, sr)
			return err
		})
		if err != nil {
			t.Fatalf("re-encoding a parsed file: %v", err)
		}
		again, err := Read(bytes.NewReader(out.Bytes()), "again")
		if err != nil {
			t.Fatalf("re-reading: %v", err)
		}
		if !reflect.DeepEqual(normNaN(again.KV), normNaN(file.KV)) || len(again.Tensors) != len(file.Tensors) {
			t.Fatalf("round trip differs")
		}
	})
}

// normNaN replaces NaNs (which are not DeepEqual to themselves) by their bit pattern.
func normNaN(kv []KV) []string {
	out := make([]string, len(kv))
	for i, e := range kv {
		switch v := e.Value.(type) {
		case float32:
			out[i] = fmt.Sprintf("%s=f32:%x", e.Key, math.Float32bits(v))
		case float64:
			out[i] = fmt.Sprintf("%s=f64:%x", e.Key, math.Float64bits(v))
		case []float32:
			s := e.Key + "=[]f32:"
			for _, x := range v {
				s += fmt.Sprintf("%x,", math.Float32bits(x))
			}
			out[i] = s
		case []float64:
			s := e.Key + "=[]f64:"
			for _, x := range v {
				s += fmt.Sprintf("%x,", math.Float64bits(x))
			}
			out[i] = s
		default:
			out[i] = fmt.Sprintf("%s=%T:%#v", e.Key, v, v)
		}
	}
	return out
}
