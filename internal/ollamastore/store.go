// Package ollamastore reads and changes an Ollama model store on disk (the OLLAMA_MODELS
// directory): it lists the manifests of every registry host, finds a model's weights blob,
// merges one store into another (store-cleanup), exports the weights as GGUF files for
// llama.cpp with a models.env mapping (export-gguf), and picks fuze's baked variants out of
// a model list (cleanup-variants).
//
// The layout is Ollama's (package manifest and types/model of the Ollama module):
//
//	<store>/manifests/<host>/<namespace>/<model>/<tag>   JSON manifest: config + layers
//	<store>/blobs/sha256-<hex>                           content-addressed layers
//
// A manifest's model layer (media type application/vnd.ollama.image.model) is the GGUF file.
// Names are shown as Ollama shows them: the default host registry.ollama.ai and the default
// namespace library are left out, the tag is always present ("tiny:latest",
// "fuze/tiny:q8", "example.com:5000/team/m:v1").
package ollamastore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Defaults of Ollama's model names (types/model).
const (
	DefaultHost      = "registry.ollama.ai"
	DefaultNamespace = "library"
	DefaultTag       = "latest"
)

// Media types of manifest layers.
const (
	MediaTypeModel     = "application/vnd.ollama.image.model"
	MediaTypeProjector = "application/vnd.ollama.image.projector"
	MediaTypeAdapter   = "application/vnd.ollama.image.adapter"
)

// Store is an Ollama model store: the directory OLLAMA_MODELS points at.
type Store struct {
	Dir string
}

// ManifestsDir is <store>/manifests.
func (s Store) ManifestsDir() string { return filepath.Join(s.Dir, "manifests") }

// BlobsDir is <store>/blobs.
func (s Store) BlobsDir() string { return filepath.Join(s.Dir, "blobs") }

var digestRE = regexp.MustCompile(`^sha256[:-]([0-9a-f]{64})$`)

// BlobPath returns the file of a layer digest ("sha256:<hex>"). Anything but a sha256
// digest is an error, so a hostile manifest cannot point outside the store.
func (s Store) BlobPath(digest string) (string, error) {
	m := digestRE.FindStringSubmatch(strings.ToLower(digest))
	if m == nil {
		return "", fmt.Errorf("invalid layer digest %q (want sha256:<64 hex digits>)", digest)
	}
	return filepath.Join(s.BlobsDir(), "sha256-"+m[1]), nil
}

// Layer is a manifest layer (or its config).
type Layer struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// Manifest is the part of an Ollama manifest fuze reads.
type Manifest struct {
	SchemaVersion int     `json:"schemaVersion"`
	MediaType     string  `json:"mediaType"`
	Config        Layer   `json:"config"`
	Layers        []Layer `json:"layers"`
}

// ModelLayer returns the manifest's model (weights) layer.
func (m *Manifest) ModelLayer() (Layer, bool) {
	for _, l := range m.Layers {
		if l.MediaType == MediaTypeModel {
			return l, true
		}
	}
	return Layer{}, false
}

// Digests lists every blob digest the manifest references (config first).
func (m *Manifest) Digests() []string {
	var out []string
	if m.Config.Digest != "" {
		out = append(out, m.Config.Digest)
	}
	for _, l := range m.Layers {
		if l.Digest != "" {
			out = append(out, l.Digest)
		}
	}
	return out
}

// Name is a fully qualified model name.
type Name struct {
	Host, Namespace, Model, Tag string
}

// ParseName parses a model name as Ollama does (types/model.ParseName): an optional host and
// namespace before the model, an optional :tag; missing parts take the defaults.
func ParseName(s string) Name {
	var n Name
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		s, n.Tag = s[:i], s[i+1:]
	}
	parts := strings.Split(s, "/")
	n.Model = parts[len(parts)-1]
	if len(parts) >= 2 {
		n.Namespace = parts[len(parts)-2]
	}
	if len(parts) >= 3 {
		n.Host = strings.Join(parts[:len(parts)-2], "/")
	}
	if n.Host == "" {
		n.Host = DefaultHost
	}
	if n.Namespace == "" {
		n.Namespace = DefaultNamespace
	}
	if n.Tag == "" {
		n.Tag = DefaultTag
	}
	return n
}

// String is the name as Ollama lists it (model.Name.DisplayShortest).
func (n Name) String() string {
	var b strings.Builder
	switch {
	case !strings.EqualFold(n.Host, DefaultHost):
		b.WriteString(n.Host + "/" + n.Namespace + "/")
	case !strings.EqualFold(n.Namespace, DefaultNamespace):
		b.WriteString(n.Namespace + "/")
	}
	b.WriteString(n.Model + ":" + n.Tag)
	return b.String()
}

// Canonical is the lower-cased full name: Ollama treats names case-insensitively.
func (n Name) Canonical() string {
	return strings.ToLower(n.Host + "/" + n.Namespace + "/" + n.Model + ":" + n.Tag)
}

// Entry is one manifest of the store.
type Entry struct {
	Name     Name
	Path     string   // the manifest file
	Manifest Manifest // zero when Err is set
	// Digest is the sha256 of the manifest file, the "digest" /api/tags reports.
	Digest string
	Err    error // the manifest could not be read or parsed
}

// Manifests lists the store's manifests of every registry host, sorted by name. A manifest
// that cannot be read or parsed is listed with Err set; a missing store is an error naming it.
func (s Store) Manifests() ([]Entry, error) {
	root := s.ManifestsDir()
	if st, err := os.Stat(s.Dir); err != nil {
		return nil, fmt.Errorf("Ollama model store: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("Ollama model store %s is not a directory", s.Dir)
	}
	// Exactly four levels, as Ollama reads them (host/namespace/model/tag).
	matches, err := filepath.Glob(filepath.Join(root, "*", "*", "*", "*"))
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, path := range matches {
		st, err := os.Stat(path)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		rel, _ := filepath.Rel(root, path)
		p := strings.Split(filepath.ToSlash(rel), "/")
		if slices.ContainsFunc(p, func(part string) bool { return strings.HasPrefix(part, ".") }) {
			continue // no name part starts with a dot; a temporary file of a copy in progress does
		}
		e := Entry{Name: Name{Host: p[0], Namespace: p[1], Model: p[2], Tag: p[3]}, Path: path}
		e.Manifest, e.Digest, e.Err = readManifest(path)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name.String() < out[j].Name.String() })
	return out, nil
}

func readManifest(path string) (Manifest, string, error) {
	var m Manifest
	data, err := os.ReadFile(path)
	if err != nil {
		return m, "", err
	}
	sum := sha256.Sum256(data)
	if err := json.Unmarshal(data, &m); err != nil {
		return Manifest{}, "", fmt.Errorf("manifest %s: %w", path, err)
	}
	return m, hex.EncodeToString(sum[:]), nil
}

// ErrNotFound is returned by Lookup for a name the store does not hold.
var ErrNotFound = errors.New("no such model in the store")

// Lookup finds the manifest of a model name (any spelling Ollama accepts: "tiny",
// "tiny:latest", "library/tiny", "example.com/team/m:v1"), case-insensitively.
func (s Store) Lookup(name string) (Entry, error) {
	want := ParseName(name)
	path := filepath.Join(s.ManifestsDir(), want.Host, want.Namespace, want.Model, want.Tag)
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		e := Entry{Name: want, Path: path}
		e.Manifest, e.Digest, e.Err = readManifest(path)
		return e, nil
	}
	all, err := s.Manifests()
	if err != nil {
		return Entry{}, err
	}
	for _, e := range all {
		if e.Name.Canonical() == want.Canonical() {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("%s: %w %s", name, ErrNotFound, s.Dir)
}

// ModelBlob returns the blob file of the entry's model layer.
func (s Store) ModelBlob(e Entry) (string, Layer, error) {
	if e.Err != nil {
		return "", Layer{}, e.Err
	}
	l, ok := e.Manifest.ModelLayer()
	if !ok {
		return "", Layer{}, fmt.Errorf("%s: manifest has no model layer (%s)", e.Name, MediaTypeModel)
	}
	path, err := s.BlobPath(l.Digest)
	if err != nil {
		return "", l, fmt.Errorf("%s: %w", e.Name, err)
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return path, l, fmt.Errorf("%s: model blob %s is missing", e.Name, path)
		}
		return path, l, fmt.Errorf("%s: %w", e.Name, err)
	}
	return path, l, nil
}
