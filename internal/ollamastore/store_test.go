package ollamastore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/gguf"
	"github.com/fuze-ai/fuze/internal/ollamaapi"
	"github.com/fuze-ai/fuze/internal/ollamatest"
)

// Names of the two synthetic models of the test store: one on the default registry host,
// one on another host (Ollama keeps it under manifests/<host>/…).
const (
	modelA  = "tiny:latest"
	modelB  = "example.com/team/two:q8"
	variant = "LLM-FuZe-tiny-cpu-ng3:latest"
)

// synthGGUF writes the tiny synthetic model with a seed of its own (distinct blobs).
func synthGGUF(t testing.TB, seed uint64) string {
	t.Helper()
	p, _ := gguf.LookupPreset("tiny")
	s, err := gguf.NewSynth(gguf.SynthOptions{Shape: p.Shape, Type: p.Type, Seed: seed, Name: "fuze-tiny"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if _, err := s.WriteFile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	return path
}

// startStore starts a real Ollama whose store holds modelA, modelB and a baked variant.
func startStore(t *testing.T) *ollamatest.Server {
	t.Helper()
	srv := ollamatest.Start(t)
	srv.CreateModel(t, modelA, synthGGUF(t, 1))
	srv.CreateModel(t, modelB, synthGGUF(t, 2))
	create(t, srv, ollamaapi.CreateRequest{Model: variant, From: modelA, Parameters: map[string]any{"num_gpu": 3}})
	return srv
}

func create(t *testing.T, srv *ollamatest.Server, req ollamaapi.CreateRequest) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Client.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
}

func tags(t *testing.T, srv *ollamatest.Server) map[string]string {
	t.Helper()
	ms, err := srv.Client.Tags(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range ms {
		out[m.Name] = m.Digest
	}
	return out
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestManifestsOfRealStore(t *testing.T) {
	srv := startStore(t)
	st := Store{Dir: srv.Models}
	entries, err := st.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var names []string
	for _, e := range entries {
		if e.Err != nil {
			t.Fatalf("%s: %v", e.Name, e.Err)
		}
		got[e.Name.String()] = e.Digest
		names = append(names, e.Name.String())
	}
	// The names and digests Ollama itself lists.
	want := tags(t, srv)
	if len(got) != len(want) {
		t.Fatalf("manifests %v, /api/tags %v", got, want)
	}
	for n, d := range want {
		if got[n] != d {
			t.Errorf("%s: manifest digest %q, /api/tags %q", n, got[n], d)
		}
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("not sorted: %v", names)
	}
	for _, n := range []string{modelA, "tiny", "library/tiny", "registry.ollama.ai/library/tiny:latest", modelB, "EXAMPLE.com/Team/two:q8"} {
		e, err := st.Lookup(n)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", n, err)
		}
		blob, layer, err := st.ModelBlob(e)
		if err != nil {
			t.Fatal(err)
		}
		if "sha256:"+sha256File(t, blob) != layer.Digest {
			t.Errorf("%s: blob %s does not hash to %s", n, blob, layer.Digest)
		}
		if _, err := gguf.ReadFile(blob); err != nil {
			t.Errorf("%s: model blob is not GGUF: %v", n, err)
		}
	}
	if _, err := st.Lookup("nope:latest"); err == nil {
		t.Error("Lookup of a missing model succeeded")
	}
	if _, err := (Store{Dir: filepath.Join(t.TempDir(), "missing")}).Manifests(); err == nil {
		t.Error("a missing store gave no error")
	}
}

func TestParseName(t *testing.T) {
	for in, want := range map[string]string{
		"tiny":                       "tiny:latest",
		"tiny:latest":                "tiny:latest",
		"library/tiny:q8":            "tiny:q8",
		"fuze/tiny":                  "fuze/tiny:latest",
		"registry.ollama.ai/a/b:c":   "a/b:c",
		"example.com:5000/team/m:v1": "example.com:5000/team/m:v1",
		"example.com:5000/team/m":    "example.com:5000/team/m:latest",
	} {
		if got := ParseName(in).String(); got != want {
			t.Errorf("ParseName(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := (Store{Dir: "/x"}).BlobPath("sha256:../../etc"); err == nil {
		t.Error("BlobPath accepted a non-digest")
	}
}

// writeManifest writes a manifest (and its blobs) into a store by hand, as Ollama lays them out.
func writeManifest(t *testing.T, store, name string, blobs map[string][]byte, model string) Manifest {
	t.Helper()
	st := Store{Dir: store}
	var m Manifest
	m.SchemaVersion = 2
	m.MediaType = "application/vnd.docker.distribution.manifest.v2+json"
	keys := make([]string, 0, len(blobs))
	for k := range blobs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		data := blobs[k]
		sum := sha256.Sum256(data)
		d := "sha256:" + hex.EncodeToString(sum[:])
		p, _ := st.BlobPath(d)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		l := Layer{MediaType: "application/vnd.ollama.image.params", Digest: d, Size: int64(len(data))}
		if k == model {
			l.MediaType = MediaTypeModel
		}
		if k == "config" {
			m.Config = Layer{MediaType: "application/vnd.docker.container.image.v1+json", Digest: d, Size: int64(len(data))}
			continue
		}
		m.Layers = append(m.Layers, l)
	}
	n := ParseName(name)
	p := filepath.Join(st.ManifestsDir(), n.Host, n.Namespace, n.Model, n.Tag)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(m)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}
