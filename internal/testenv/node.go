package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireNodeEnv, set to 1, makes tests that run a Node.js checker fail
// instead of skip when node or the checker's installed packages are
// missing. .ci/run sets it after installing them with npm ci.
const RequireNodeEnv = "ENSINSTRUCT_REQUIRE_NODE"

// Node returns the path of the node binary for a checker in dir whose
// package dir/node_modules/pkg was installed with npm ci. Without them it
// skips the test, or fails it when the environment requires Node.
func Node(t testing.TB, dir, pkg string) string {
	t.Helper()
	missing := ""
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing = "node is not on PATH"
	} else if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
		missing = pkg + " is not installed: run npm ci in " + dir
	}
	if missing != "" {
		if os.Getenv(RequireNodeEnv) == "1" {
			t.Fatalf("%s (%s=1 requires it)", missing, RequireNodeEnv)
		}
		t.Skip(missing)
	}
	return node
}
