// Package testenv tells tests which real services the environment
// provides, and makes a missing service a failure where the environment
// requires it (CI sets the requirement, so a server that did not start
// cannot turn into a quietly skipped test).
//
// It is for tests only.
package testenv

import (
	"os"
	"strings"
	"testing"
)

const (
	// OllamaEnv holds the host:port of the real Ollama test server, as
	// .ci/ollama.sh prints it.
	OllamaEnv = "ENSINSTRUCT_TEST_OLLAMA"
	// RequireOllamaEnv, set to 1, makes tests that need the Ollama test
	// server fail instead of skip when OllamaEnv is unset. .ci/run sets it.
	RequireOllamaEnv = "ENSINSTRUCT_REQUIRE_OLLAMA"
)

// OllamaAddr returns the test server's host:port, or "" when there is
// none. It reports whether a missing server is an error (RequireOllamaEnv).
func OllamaAddr() (addr string, required bool) {
	return os.Getenv(OllamaEnv), os.Getenv(RequireOllamaEnv) == "1"
}

// Ollama returns the base URL (http://host:port) of the real Ollama test
// server. Without one it skips the test, or fails it when the environment
// requires the server.
func Ollama(t testing.TB) string {
	t.Helper()
	addr, required := OllamaAddr()
	if addr == "" {
		msg := OllamaEnv + ` is not set: start the test server with eval "$(.ci/ollama.sh)"`
		if required {
			t.Fatalf("%s (%s=1 requires it)", msg, RequireOllamaEnv)
		}
		t.Skip(msg)
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/")
}
