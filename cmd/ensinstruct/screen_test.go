package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// testScreen is a screen writing to a buffer, as wide as cols says.
func testScreen(cols *atomic.Int64) (*screen, *bytes.Buffer) {
	var buf bytes.Buffer
	return &screen{w: &buf, terminal: true, width: func() int { return int(cols.Load()) }}, &buf
}

// noTime drops the time from text records, so tests can compare them.
var noTime = &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}}

func screenText(t *testing.T, out string, cols int) []string {
	t.Helper()
	v := newVT(cols, 24)
	v.feedTTY(out)
	if v.err != nil {
		t.Fatalf("%v in %q", v.err, out)
	}
	var lines []string
	for _, r := range v.text() {
		if r.wrapped {
			t.Errorf("a wrapped row: %q", r.text)
		}
		lines = append(lines, r.text)
	}
	return lines
}

func TestScreenRedrawsInPlace(t *testing.T) {
	var cols atomic.Int64
	cols.Store(40)
	scr, buf := testScreen(&cols)
	log := slog.New(scr.handler(slog.NewTextHandler(buf, noTime)))

	log.Warn("before the bar")
	scr.draw([]string{"A 1", "B 1", "  total 1"})
	scr.draw([]string{"A 2", "B 2", "  total 2"})
	log.Warn("during the bar", "n", 1)
	scr.draw([]string{"A 3 " + strings.Repeat("x", 60), "B 3", "  total 3"})
	log.Warn("during the bar", "n", 2)
	scr.draw([]string{"A 4", "  total 4"}) // a shorter frame
	scr.release()
	log.Warn("after the bar")

	got := screenText(t, buf.String(), 40)
	want := []string{
		`level=WARN msg="before the bar"`,
		`level=WARN msg="during the bar" n=1`,
		`level=WARN msg="during the bar" n=2`,
		"A 4",
		"  total 4",
		`level=WARN msg="after the bar"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(buf.String(), "A 3 "+strings.Repeat("x", 34)+"…\n") {
		t.Errorf("a line wider than the terminal was not cut to 39 columns:\n%q", buf.String())
	}
}

// TestScreenResize: the terminal rewrapped the bar's lines when it was
// made narrower, so the next redraw moves up over the rows they take now.
func TestScreenResize(t *testing.T) {
	var cols atomic.Int64
	cols.Store(80)
	scr, buf := testScreen(&cols)
	wide := strings.Repeat("a", 79)
	scr.draw([]string{wide, "short"})
	for _, tc := range []struct {
		cols int64
		up   string // the move up over the last frame
	}{
		{80, "\r\x1b[2A"}, // 79 and 5 columns at 80: a row each
		{40, "\r\x1b[3A"}, // 79 columns at 40: two rows
		{40, "\r\x1b[2A"}, // the frame drawn at 40 fits it
		{20, "\r\x1b[3A"}, // 39 columns at 20: two rows
		{120, "\r\x1b[2A"},
	} {
		cols.Store(tc.cols)
		buf.Reset()
		scr.draw([]string{wide, "short"})
		if !strings.HasPrefix(buf.String(), tc.up) {
			t.Errorf("at %d columns: the redraw starts %q, want %q", tc.cols, buf.String()[:min(buf.Len(), 8)], tc.up)
		}
		if want := truncate(wide, int(tc.cols)-1) + "\n"; !strings.Contains(buf.String(), want) {
			t.Errorf("at %d columns: the line is not cut to %d", tc.cols, tc.cols-1)
		}
	}
}

func TestRowsAt(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		cols  int
		want  int
	}{
		{nil, 80, 0},
		{[]string{""}, 80, 1},
		{[]string{strings.Repeat("x", 80)}, 80, 1},
		{[]string{strings.Repeat("x", 81)}, 80, 2},
		{[]string{strings.Repeat("█", 79), "y"}, 40, 3},
	} {
		if got := rowsAt(tc.lines, tc.cols); got != tc.want {
			t.Errorf("rowsAt(%d lines, %d) = %d, want %d", len(tc.lines), tc.cols, got, tc.want)
		}
	}
}

// TestScreenConcurrentLogging logs from several goroutines while another
// redraws the bar: every record is on screen once, in order per
// goroutine, and the last frame once, at the bottom.
func TestScreenConcurrentLogging(t *testing.T) {
	var cols atomic.Int64
	cols.Store(60)
	scr, buf := testScreen(&cols)
	log := slog.New(scr.handler(slog.NewTextHandler(buf, noTime)))
	const writers, records, frames = 4, 50, 200
	var wg sync.WaitGroup
	for w := range writers {
		l := log.With("w", w) // derived loggers share the screen
		wg.Go(func() {
			for i := range records {
				l.Warn("retrying", "i", i)
			}
		})
	}
	wg.Go(func() {
		for i := range frames {
			scr.draw([]string{fmt.Sprintf("A frame %d", i), fmt.Sprintf("  total %d", i)})
		}
	})
	wg.Wait()
	scr.release()

	got := screenText(t, buf.String(), 60)
	if len(got) != writers*records+2 {
		t.Fatalf("%d rows on screen, want %d", len(got), writers*records+2)
	}
	if got[len(got)-2] != fmt.Sprintf("A frame %d", frames-1) || got[len(got)-1] != fmt.Sprintf("  total %d", frames-1) {
		t.Errorf("last rows %q, want the last frame", got[len(got)-2:])
	}
	next := make([]int, writers)
	for _, l := range got[:len(got)-2] {
		var w, i int
		if _, err := fmt.Sscanf(l, "level=WARN msg=retrying w=%d i=%d", &w, &i); err != nil {
			t.Fatalf("row %q: %v", l, err)
		}
		if i != next[w] {
			t.Errorf("writer %d: record %d after %d", w, i, next[w]-1)
		}
		next[w] = i + 1
	}
}

// TestScreenWriter: records printed on the bar's terminal go above it,
// even when a record comes in pieces.
func TestScreenWriter(t *testing.T) {
	var cols atomic.Int64
	cols.Store(40)
	scr, buf := testScreen(&cols)
	out := screenWriter{s: scr, w: buf}
	fmt.Fprintln(out, "record 1") // no bar yet
	scr.draw([]string{"A 1", "  total 1"})
	fmt.Fprintln(out, "record 2")
	fmt.Fprint(out, "rec")
	scr.draw([]string{"A 2", "  total 2"}) // while the record is unfinished
	fmt.Fprint(out, "ord ")
	fmt.Fprintln(out, "3")
	scr.draw([]string{"A 3", "  total 3"})
	fmt.Fprint(out, "record 4, unfinished")
	scr.release()

	got := screenText(t, buf.String(), 40)
	want := []string{"record 1", "record 2", "record 3", "record 4, unfinished", "A 3", "  total 3"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
