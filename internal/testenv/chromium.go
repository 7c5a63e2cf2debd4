package testenv

import (
	"os"
	"os/exec"
	"testing"
)

const (
	// ChromiumEnv, when set, is the path of the Chromium (or Chrome)
	// binary for browser tests; otherwise "chromium" and
	// "chromium-browser" are looked up in PATH.
	ChromiumEnv = "ENSINSTRUCT_CHROMIUM"
	// RequireChromiumEnv, set to 1, makes browser tests fail instead of
	// skip when no Chromium is found. .ci/run sets it.
	RequireChromiumEnv = "ENSINSTRUCT_REQUIRE_CHROMIUM"
)

// Chromium returns the path of a Chromium binary for browser tests.
// Without one it skips the test, or fails it when the environment
// requires a browser.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(ChromiumEnv); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium in PATH (apt-get install chromium, or set " + ChromiumEnv + ")"
	if os.Getenv(RequireChromiumEnv) == "1" {
		t.Fatalf("%s (%s=1 requires it)", msg, RequireChromiumEnv)
	}
	t.Skip(msg)
	return ""
}
