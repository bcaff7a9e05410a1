package ollamastore

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/ollamaapi"
	"github.com/fuze-ai/fuze/internal/ollamatest"
)

// copyTree copies a directory tree (regular files and directories).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// listTree lists every file under dir with its size, to prove a dry run changed nothing.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			info, _ := d.Info()
			out = append(out, p+" "+info.Mode().String())
		}
		return nil
	})
	return out
}

func TestMergeRealStores(t *testing.T) {
	srv := startStore(t) // CANON: modelA, modelB, variant
	canon := srv.Models
	alt := filepath.Join(t.TempDir(), "alt")
	copyTree(t, canon, alt)

	// A second real Ollama on the copy: a third model, and modelB changed (a params layer),
	// so its manifest differs between the stores.
	srv2 := ollamatest.Start(t, "OLLAMA_MODELS="+alt)
	srv2.CreateModel(t, "third:latest", synthGGUF(t, 3))
	create(t, srv2, ollamaapi.CreateRequest{Model: modelB, From: modelB, Parameters: map[string]any{"num_ctx": 256}})
	if _, ok := tags(t, srv2)["third:latest"]; !ok {
		t.Fatal("second server did not use the copied store")
	}
	if _, err := os.Stat(filepath.Join(canon, "manifests", DefaultHost, DefaultNamespace, "third")); err == nil {
		t.Fatal("third model landed in CANON")
	}
	// CANON's copy of modelA's weights is damaged: the merge must repair it from ALT.
	eA, _ := Store{Dir: canon}.Lookup(modelA)
	blobA, layerA, _ := Store{Dir: canon}.ModelBlob(eA)
	data, _ := os.ReadFile(blobA)
	data[len(data)/2] ^= 0xff
	os.WriteFile(blobA, data, 0o644)

	before := listTree(t, canon) // dry run first: nothing changes
	altBefore := listTree(t, alt)
	dry, err := Merge(canon, alt, MergeOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !dry.Changed() || dry.ManifestsMoved != 1 || len(dry.Conflicts) != 1 {
		t.Errorf("dry run report %+v", dry)
	}
	if !slices.Equal(before, listTree(t, canon)) || !slices.Equal(altBefore, listTree(t, alt)) {
		t.Fatal("dry run changed a store")
	}

	var progress bytes.Buffer
	r, err := Merge(canon, alt, MergeOptions{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\n%s", progress.String(), r.Summary())
	if r.ManifestsMoved != 1 || r.ManifestsIdentical != 2 || !slices.Equal(r.Conflicts, []string{modelB}) {
		t.Errorf("manifests: %+v", r)
	}
	if r.BlobsMoved < 2 || r.BlobsDeduped < 3 || r.BlobsRepaired != 1 || r.BlobsCopied != 0 || len(r.Problems) != 0 {
		t.Errorf("blobs: %+v", r)
	}
	if "sha256:"+sha256File(t, blobA) != layerA.Digest {
		t.Error("CANON's damaged blob was not repaired")
	}
	if !strings.Contains(progress.String(), "[blobs]") || !strings.Contains(progress.String(), "[manifests]") {
		t.Errorf("progress: %q", progress.String())
	}
	// The daemon on CANON now lists the third model, and its weights are there.
	if _, ok := tags(t, srv)["third:latest"]; !ok {
		t.Error("CANON's daemon does not list the merged model")
	}
	e, err := Store{Dir: canon}.Lookup("third")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := (Store{Dir: canon}).ModelBlob(e); err != nil {
		t.Error(err)
	}
	// ALT keeps only the differing manifest; its blobs are all in CANON now.
	left, _ := regularFiles(alt)
	if len(left) != 1 || !strings.HasPrefix(left[0], "manifests/example.com/team/two/") {
		t.Errorf("left in ALT: %v", left)
	}
	if r.AltRemoved {
		t.Error("ALT removed although it holds a differing manifest")
	}

	// Second run: nothing to do (the conflict is reported again, nothing changes).
	canonNow, altNow := listTree(t, canon), listTree(t, alt)
	r2, err := Merge(canon, alt, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Changed() || len(r2.Conflicts) != 1 || !strings.HasPrefix(r2.Summary(), "nothing to do") {
		t.Errorf("second run: %+v %s", r2, r2.Summary())
	}
	if !slices.Equal(canonNow, listTree(t, canon)) || !slices.Equal(altNow, listTree(t, alt)) {
		t.Error("second run changed a store")
	}
}

// TestMergeCrafted covers cross-file-system copies and the corrupt cases on hand-made stores.
func TestMergeCrafted(t *testing.T) {
	renameFile = func(string, string) error { return &os.LinkError{Op: "rename", Err: syscall.EXDEV} }
	t.Cleanup(func() { renameFile = os.Rename })
	canon, alt := t.TempDir(), t.TempDir()
	writeManifest(t, canon, "shared:latest", map[string][]byte{"config": []byte("c1"), "model": []byte("weights-1")}, "model")
	writeManifest(t, alt, "shared:latest", map[string][]byte{"config": []byte("c1"), "model": []byte("weights-1")}, "model")
	mNew := writeManifest(t, alt, "new:latest", map[string][]byte{"config": []byte("c2"), "model": []byte("weights-2")}, "model")
	mBad := writeManifest(t, alt, "bad:latest", map[string][]byte{"config": []byte("c3"), "model": []byte("weights-3")}, "model")
	mBoth := writeManifest(t, canon, "both:latest", map[string][]byte{"model": []byte("weights-4")}, "model")
	writeManifest(t, alt, "both:latest", map[string][]byte{"model": []byte("weights-4")}, "model")

	st := Store{Dir: alt}
	oldTime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	newBlob, _ := st.BlobPath(mNew.Layers[0].Digest)
	os.Chtimes(newBlob, oldTime, oldTime)
	badBlob, _ := st.BlobPath(mBad.Layers[0].Digest)
	os.WriteFile(badBlob, []byte("weights-X"), 0o644) // content no longer matches its name
	for _, s := range []string{alt, canon} {          // weights-4 damaged in both stores
		p, _ := Store{Dir: s}.BlobPath(mBoth.Layers[0].Digest)
		os.WriteFile(p, []byte("weights-?"), 0o644)
	}
	partial := filepath.Join(alt, "blobs", "sha256-0123-partial")
	os.WriteFile(partial, []byte("x"), 0o644)

	r, err := Merge(canon, alt, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r.Summary(), r.Problems)
	if r.BlobsCopied != 3 || r.BlobsMoved != 0 || r.ManifestsMoved != 1 || r.ManifestsIdentical != 2 {
		t.Errorf("report %+v", r)
	}
	// new: copied with its time, removed from ALT.
	dst, _ := Store{Dir: canon}.BlobPath(mNew.Layers[0].Digest)
	if st, err := os.Stat(dst); err != nil || !st.ModTime().Equal(oldTime) {
		t.Errorf("copied blob %v %v", st, err)
	}
	if _, err := os.Stat(newBlob); err == nil {
		t.Error("copied blob still in ALT")
	}
	// bad: corrupt blob and its manifest stay in ALT; both-corrupt duplicate stays; the
	// partial file stays. Each is a problem.
	if len(r.Problems) != 4 {
		t.Fatalf("problems: %q", r.Problems)
	}
	for _, p := range []string{badBlob, partial} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s should be left in ALT", p)
		}
	}
	joined := strings.Join(r.Problems, "\n")
	for _, want := range []string{"is corrupt", "bad:latest references", "corrupt in both stores", "not a content-addressed blob"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no problem mentions %q:\n%s", want, joined)
		}
	}
	if _, err := os.Stat(filepath.Join(canon, "manifests", DefaultHost, DefaultNamespace, "bad")); err == nil {
		t.Error("manifest with a missing blob moved into CANON")
	}
	// Again: nothing changes, the same problems are reported.
	r2, err := Merge(canon, alt, MergeOptions{})
	if err != nil || r2.Changed() || len(r2.Problems) != 4 {
		t.Errorf("second run %+v %v", r2, err)
	}
}

func TestMergeNothingToDo(t *testing.T) {
	canon := t.TempDir()
	r, err := Merge(canon, filepath.Join(t.TempDir(), "none"), MergeOptions{})
	if err != nil || !r.AltMissing || r.Changed() {
		t.Errorf("missing ALT: %+v %v", r, err)
	}
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(canon, link)
	r, err = Merge(canon, link, MergeOptions{})
	if err != nil || !r.SameStore {
		t.Errorf("ALT linked to CANON: %+v %v", r, err)
	}
	os.MkdirAll(filepath.Join(canon, "blobs", "inner"), 0o755)
	if _, err := Merge(canon, filepath.Join(canon, "blobs", "inner"), MergeOptions{}); err == nil {
		t.Error("nested stores accepted")
	}
	// An empty ALT is removed.
	alt := filepath.Join(t.TempDir(), "alt")
	os.MkdirAll(filepath.Join(alt, "blobs"), 0o755)
	os.MkdirAll(filepath.Join(alt, "manifests", "h", "n"), 0o755)
	r, err = Merge(canon, alt, MergeOptions{})
	if err != nil || !r.AltRemoved {
		t.Errorf("empty ALT: %+v %v", r, err)
	}
}
