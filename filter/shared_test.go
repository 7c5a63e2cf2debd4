package filter

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedPath returns the path of rel inside the shared test data directory
// that sits next to the module root (../shared from the repository root), and
// skips the test when the file is absent.
func sharedPath(t testing.TB, rel string) string {
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
			t.Skipf("skipping: no go.mod above the test directory, so ../shared/%s cannot be located", rel)
		}
		dir = parent
	}
	path := filepath.Join(dir, "..", "shared", filepath.FromSlash(rel))
	if _, err := os.Stat(path); err != nil {
		t.Skipf("skipping: %s is absent (the shared test data sits at ../shared next to the repository)", path)
	}
	return path
}
