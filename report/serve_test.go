package report

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve starts a report server on a loopback port for the test and
// returns its URL.
func serve(t *testing.T, h *Handler) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", h, func(u string) { ready <- u }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Serve: %v", err)
		}
	})
	select {
	case u := <-ready:
		return u
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	return ""
}

// copyRun copies the run fixture to a new directory.
func copyRun(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{ManifestFile, KeptFile, RejectedFile} {
		data, err := os.ReadFile(filepath.Join("testdata", "run", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func get(t *testing.T, method, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestServe runs the report server over loopback: the page and its
// version follow the files, other hosts and paths are refused, and a
// broken file gives an error page that retries.
func TestServe(t *testing.T) {
	dir := copyRun(t)
	url := serve(t, &Handler{Path: dir, Refresh: 1.5})

	code, body := get(t, "GET", url, "")
	if code != http.StatusOK || !strings.Contains(body, `data-refresh="1.5"`) || strings.Count(body, `<tr class="example`) != 14 {
		t.Errorf("GET / = %d, %d examples, want 200 and 14 examples on a live page", code, strings.Count(body, `<tr class="example`))
	}
	_, v1 := get(t, "GET", url+"version", "")
	if !strings.Contains(body, `data-version="`+strings.TrimSpace(v1)+`"`) {
		t.Errorf("the page does not carry the version %q", v1)
	}
	if err := os.WriteFile(filepath.Join(dir, KeptFile), []byte("{\"instruction\":\"a\",\"output\":\"b\"}\n{\"instruction\":\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, v2 := get(t, "GET", url+"version", ""); v2 == v1 {
		t.Errorf("version %q unchanged after the kept file changed", v2)
	}
	code, body = get(t, "GET", url, "")
	if code != http.StatusInternalServerError || !strings.Contains(body, "kept.jsonl:2: invalid JSON") || !strings.Contains(body, `http-equiv="refresh"`) {
		t.Errorf("GET / with a broken file = %d %q, want 500 naming kept.jsonl:2 and retrying", code, body)
	}

	for _, tt := range []struct {
		method, path, host string
		want               int
	}{
		{"GET", "", "evil.example", http.StatusForbidden},
		{"GET", "version", "attacker.test:80", http.StatusForbidden},
		{"GET", "", "localhost:1234", http.StatusInternalServerError},
		{"POST", "", "", http.StatusMethodNotAllowed},
		{"GET", "other", "", http.StatusNotFound},
	} {
		if code, _ := get(t, tt.method, url+tt.path, tt.host); code != tt.want {
			t.Errorf("%s /%s (Host %q) = %d, want %d", tt.method, tt.path, tt.host, code, tt.want)
		}
	}
}

func TestServeRefusesOtherAddresses(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0"} {
		err := Serve(context.Background(), addr, &Handler{Path: "testdata/run"}, nil)
		if !errors.Is(err, ErrNotLoopback) {
			t.Errorf("Serve(%q) = %v, want ErrNotLoopback", addr, err)
		}
	}
}
