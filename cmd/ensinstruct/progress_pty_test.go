package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestProgressOnTerminal runs generate in a pseudo-terminal 60 and 80
// columns wide against a slow fake model server that fails one call once
// the bar is up (the pool warns and retries), replays everything the
// process wrote on a model of the terminal, and checks the screen at the
// end: no line the program drew is wider than the terminal, exactly one
// copy of each bar line is left, the warning is still there, and the
// summary fits 80 columns and the terminal. With the records on the same
// terminal, every record is there too.
func TestProgressOnTerminal(t *testing.T) {
	bin := ensinstructBinary(t)
	for _, tc := range []struct {
		cols    int
		records bool // stdout is the terminal too
	}{{60, false}, {80, false}, {80, true}} {
		name := fmt.Sprintf("%d columns", tc.cols)
		if tc.records {
			name += ", records on the terminal"
		}
		t.Run(name, func(t *testing.T) {
			screen, raw := generateOnTerminal(t, bin, tc.cols, tc.records)
			checkTerminal(t, screen, raw, tc.cols, tc.records)
		})
	}
}

const retryWarning = "model call failed; retrying"

// generateOnTerminal runs a generate of 40 examples on a pseudo-terminal
// cols wide, its records to out.jsonl or (records) to the terminal, and
// returns the screen at the end and the bytes written.
func generateOnTerminal(t *testing.T, bin string, cols int, records bool) ([]vtLine, string) {
	t.Helper()
	dir := t.TempDir()
	srv := fakeModels(t, 25*time.Millisecond)
	// One instance request fails with a 503 once the bar has been
	// redrawn, so that the pool's warning comes while the bar is up.
	var armed, failed atomic.Bool
	target, _ := url.Parse(srv.URL)
	forward := httputil.NewSingleHostReverseProxy(target)
	forward.ErrorLog = log.New(io.Discard, "", 0) // calls cancelled when the run ends
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/generate" && armed.Load() && failed.CompareAndSwap(false, true) {
			http.Error(w, `{"error":"server busy"}`, http.StatusServiceUnavailable)
			return
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	fakeConfig(t, dir, proxy.URL, 4)
	writeTestSeeds(t, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"generate", "-c", "gen.yaml", "--seeds", "seeds.jsonl", "-n", "40", "--run-dir", "run", "--progress", "auto"}
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append(args, "-o", "out.jsonl")...)
	cmd.Stdout = &stdout
	if records {
		cmd = exec.CommandContext(ctx, bin, args...) // stdout on the terminal
	}
	cmd.Dir = dir
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: uint16(cols)})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()

	var mu sync.Mutex
	var raw bytes.Buffer
	redraw := regexp.MustCompile(`\r\x1b\[\d+A`)
	read := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			mu.Lock()
			raw.Write(buf[:n])
			if len(redraw.FindAllIndex(raw.Bytes(), 2)) == 2 {
				armed.Store(true)
			}
			mu.Unlock()
			if err != nil {
				read <- err
				return
			}
		}
	}()
	waitErr := cmd.Wait()
	// The terminal reports EIO once the process has exited and every byte
	// it wrote has been read.
	if err := <-read; !errors.Is(err, syscall.EIO) && !errors.Is(err, os.ErrClosed) {
		t.Errorf("reading the terminal: %v", err)
	}
	mu.Lock()
	out := raw.String()
	mu.Unlock()
	if waitErr != nil {
		t.Fatalf("generate: %v\n%s", waitErr, out)
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout: %q, want nothing (records go to -o)", stdout.String())
	}
	if !failed.Load() {
		t.Fatalf("the server never failed a call: the bar was not redrawn twice\n%q", out)
	}
	if !records {
		data, err := os.ReadFile(filepath.Join(dir, "out.jsonl"))
		if err != nil || bytes.Count(data, []byte("\n")) != 40 {
			t.Errorf("out.jsonl: %d records, %v; want 40", bytes.Count(data, []byte("\n")), err)
		}
	}

	v := newVT(cols, 24)
	v.feed(out)
	if v.err != nil {
		t.Fatalf("replaying the output: %v\n%q", v.err, out)
	}
	return v.text(), out
}

var (
	typeBarLine  = regexp.MustCompile(`^[AB] ([█░]+ )?\d+/\d+ kept`)
	totalBarLine = regexp.MustCompile(`^  \d+ calls? · `)
)

// checkTerminal checks the screen at the end of a run in a terminal cols
// wide, and that the bytes written redrew the bar several times, and
// after the warning.
func checkTerminal(t *testing.T, screen []vtLine, raw string, cols int, records bool) {
	t.Helper()
	defer func() {
		if t.Failed() {
			var b strings.Builder
			for _, l := range screen {
				fmt.Fprintf(&b, "%v|%s\n", map[bool]string{true: "+", false: " "}[l.wrapped], l.text)
			}
			t.Logf("the screen at the end (+: a wrapped row):\n%s", b.String())
		}
	}()
	redraws := regexp.MustCompile(`\r\x1b\[\d+A`).FindAllStringIndex(raw, -1)
	warned := strings.Index(raw, retryWarning)
	if len(redraws) < 4 {
		t.Errorf("the bar was redrawn %d times, want several", len(redraws))
	}
	if warned < 0 || len(redraws) == 0 || redraws[len(redraws)-1][0] < warned {
		t.Errorf("the warning (at byte %d) did not come while the bar was up (%d redraws)", warned, len(redraws))
	}

	lines := logical(screen)
	var bars, totals, warnings, data int
	summary := -1
	for i, l := range lines {
		isRecord := strings.HasPrefix(l.text, "time=")
		isData := strings.HasPrefix(l.text, `{"instruction":"`) && strings.HasSuffix(l.text, `"}`)
		if isData {
			data++
		}
		if l.rows > 1 && !isRecord && !isData {
			t.Errorf("line %d is %d columns wide, wider than the terminal (%d): %q", i, textWidth(l.text), cols, l.text)
		}
		switch {
		case typeBarLine.MatchString(l.text):
			bars++
		case totalBarLine.MatchString(l.text):
			totals++
		case isRecord && strings.Contains(l.text, retryWarning):
			warnings++
		case strings.HasPrefix(l.text, "ensinstruct: ") && summary < 0:
			summary = i
		}
		if (typeBarLine.MatchString(l.text) || totalBarLine.MatchString(l.text)) && textWidth(l.text) > cols-1 {
			t.Errorf("bar line %d is %d columns wide, want at most %d: %q", i, textWidth(l.text), cols-1, l.text)
		}
	}
	if bars != 2 || totals != 1 {
		t.Errorf("%d type lines and %d totals lines of the bar on screen, want 2 and 1", bars, totals)
	}
	if warnings != 1 {
		t.Errorf("the warning is on screen %d times, want once", warnings)
	}
	if want := map[bool]int{false: 0, true: 40}[records]; data != want {
		t.Errorf("%d whole records on screen, want %d", data, want)
	}
	if summary < 0 {
		t.Fatal("no summary on screen")
	}
	dest := map[bool]string{false: "out.jsonl", true: "stdout"}[records]
	if !strings.Contains(lines[summary].text, "complete in") || !strings.Contains(lines[summary].text, "40 records to "+dest) {
		t.Errorf("summary headline: %q", lines[summary].text)
	}
	for _, l := range lines[summary:] {
		if w := textWidth(l.text); w > min(summaryColumns, cols) {
			t.Errorf("summary line is %d columns, want at most %d: %q", w, min(summaryColumns, cols), l.text)
		}
	}
}
