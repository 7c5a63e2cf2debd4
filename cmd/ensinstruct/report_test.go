package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReportServe runs report --serve on a loopback port as a user
// would: it prints the URL, serves the page rebuilt from the files, and
// exits when interrupted.
func TestReportServe(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"manifest.json", "kept.jsonl", "rejected.jsonl"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "report", "testdata", "run", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: pw, getenv: func(string) string { return "" }}
	code := make(chan int, 1)
	go func() {
		code <- a.execute(ctx, []string{"report", "--serve", "127.0.0.1:0", "--refresh", "0.5", dir})
		pw.Close()
	}()

	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no output: exit %d", <-code)
	}
	m := regexp.MustCompile(`^report: serving .* at (http://127\.0\.0\.1:\d+/) \(Ctrl-C to stop\)$`).FindStringSubmatch(lines.Text())
	if m == nil {
		t.Fatalf("first line %q does not give the URL", lines.Text())
	}
	go io.Copy(io.Discard, pr)

	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `data-refresh="0.5"`) || !strings.Contains(string(body), `<svg id="funnel-A"`) {
		t.Errorf("GET %s = %d, want 200 and the live page", m[1], resp.StatusCode)
	}

	cancel()
	select {
	case c := <-code:
		if c != exitInterrupted {
			t.Errorf("exit code after interruption = %d, want %d", c, exitInterrupted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop when interrupted")
	}
}

// TestReportServeBadInput: a broken run is reported before serving, with
// exit 2.
func TestReportServeBadInput(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"seed": "x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
	if c := a.execute(context.Background(), []string{"report", "--serve", "127.0.0.1:0", dir}); c != exitBadInput {
		t.Errorf("exit %d, want %d", c, exitBadInput)
	}
	if !strings.Contains(stderr.String(), "manifest.json: seed: want int64") {
		t.Errorf("stderr = %q, want the manifest's field named", stderr.String())
	}
}
