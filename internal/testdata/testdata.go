// Package testdata locates the repository's shared test data (the
// testdata/ directory at the module root) for the tests of every package.
// See testdata/README.md for what each file is and where it comes from.
//
// It is for tests only. Nothing in the product reads these files.
package testdata

import (
	"os"
	"path/filepath"
	"testing"
)

// Root returns the absolute path of the module's testdata/ directory. It
// fails the test when the directory cannot be found: a clone of the
// repository always has it, so its absence is a broken checkout, not a
// reason to skip.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testdata: no go.mod above the test directory")
		}
		dir = parent
	}
	return filepath.Join(dir, "testdata")
}

// Path returns the absolute path of rel (slash-separated) inside the
// module's testdata/ directory, failing the test when it does not exist.
func Path(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Root(t), filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testdata: %v (the repository's testdata/ directory is incomplete)", err)
	}
	return p
}

// Open opens rel inside the module's testdata/ directory and closes it
// when the test ends.
func Open(t testing.TB, rel string) *os.File {
	t.Helper()
	f, err := os.Open(Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
