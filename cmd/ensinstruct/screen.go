package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// screen is stderr as the progress bar uses it: the bar's lines stay at
// the bottom and are redrawn in place, and log records (and records
// printed on the same terminal, see sharedStdout) are written above
// them, so that nothing is drawn over. Its methods are safe for
// concurrent use; build one with newScreen.
//
// A redraw moves the cursor up over the lines drawn last time and writes
// the new ones. Lines are kept one column short of the terminal's width,
// so none wraps and each takes one row; if the terminal has been made
// narrower since the last draw, it has rewrapped the old lines (as
// terminals that reflow on a resize do) and the move up counts the rows
// they take now.
type screen struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	width    func() int // the terminal's columns now; 0 when unknown
	frame    []string   // the bar's lines, as drawn; empty: none
	hidden   bool       // the bar is cleared until a line written above it ends
}

// newScreen returns the screen of w. The width is read from the terminal
// at every draw, so a resize takes effect at the next one.
func newScreen(w io.Writer) *screen {
	f, ok := w.(*os.File)
	return &screen{w: w, terminal: ok && term.IsTerminal(int(f.Fd())),
		width: func() int { return terminalColumns(w) }}
}

// terminalColumns returns the width of the terminal w writes to, or 0
// when w is not a terminal.
func terminalColumns(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return cols
}

// screen returns the screen of the process's stderr, which its logger
// and the progress bar share.
func (a *app) screen() *screen {
	a.scrOnce.Do(func() { a.scr = newScreen(a.stderr) })
	return a.scr
}

// sharedStdout returns stdout, made to write above the bar when it is a
// terminal too (records printed where the bar is drawn), so that the
// bar never draws over them.
func (a *app) sharedStdout(stdout io.Writer) io.Writer {
	f, ok := stdout.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || !a.screen().terminal {
		return stdout
	}
	return screenWriter{s: a.screen(), w: stdout}
}

// columns returns the terminal's width now, or defaultColumns.
func (s *screen) columns() int {
	if c := s.width(); c > 0 {
		return c
	}
	return defaultColumns
}

// lineWidth is the most columns a bar line may take at a terminal width:
// one short of it, so the cursor never waits in the last column, where
// terminals differ on when they wrap.
func lineWidth(columns int) int { return max(1, columns-1) }

// draw replaces the bar with lines. A line longer than the terminal is
// cut, never wrapped. While a line written above the bar is unfinished,
// the bar is only remembered, and drawn when the line ends.
func (s *screen) draw(lines []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cols := s.columns()
	var b strings.Builder
	if !s.hidden {
		s.moveToTop(&b, cols)
	}
	s.frame = s.frame[:0]
	for _, l := range lines {
		l = truncate(l, lineWidth(cols))
		s.frame = append(s.frame, l)
		b.WriteString("\x1b[2K")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString("\x1b[J") // rows left over from a taller bar
	if !s.hidden {
		io.WriteString(s.w, b.String())
	}
}

// above clears the bar, lets write print (a log record, a record), and
// draws the bar again below what it printed. If what write printed does
// not end a line (ended reports false), the bar stays cleared until
// something written later does.
func (s *screen) above(write func() (ended bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.frame) == 0 {
		write()
		return
	}
	cols := s.columns()
	if !s.hidden {
		var b strings.Builder
		s.moveToTop(&b, cols)
		b.WriteString("\x1b[J")
		io.WriteString(s.w, b.String())
	}
	s.hidden = !write()
	if s.hidden {
		return
	}
	var b strings.Builder
	for i, l := range s.frame {
		s.frame[i] = truncate(l, lineWidth(cols))
		b.WriteString(s.frame[i])
		b.WriteByte('\n')
	}
	io.WriteString(s.w, b.String())
}

// release leaves the bar where it is: what is written from now on goes
// below it, and nothing redraws it.
func (s *screen) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hidden && len(s.frame) > 0 {
		// The last frame, after the unfinished line.
		io.WriteString(s.w, "\n"+strings.Join(s.frame, "\n")+"\n")
	}
	s.frame, s.hidden = nil, false
}

// moveToTop moves the cursor to the first column of the bar's first row.
func (s *screen) moveToTop(b *strings.Builder, cols int) {
	if len(s.frame) == 0 {
		return
	}
	b.WriteByte('\r')
	fmt.Fprintf(b, "\x1b[%dA", rowsAt(s.frame, cols))
}

// rowsAt returns the rows lines take on a terminal cols wide that wraps
// long lines.
func rowsAt(lines []string, cols int) int {
	n := 0
	for _, l := range lines {
		n += max(1, (textWidth(l)+cols-1)/cols)
	}
	return n
}

// handler wraps h so that its records are written above the bar.
func (s *screen) handler(h slog.Handler) slog.Handler { return screenHandler{s: s, h: h} }

// screenHandler is a slog.Handler that writes above a screen's bar.
type screenHandler struct {
	s *screen
	h slog.Handler
}

func (h screenHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h screenHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	h.s.above(func() bool {
		err = h.h.Handle(ctx, r)
		return true // the handlers of package slog end every record with a newline
	})
	return err
}

func (h screenHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return screenHandler{s: h.s, h: h.h.WithAttrs(as)}
}

func (h screenHandler) WithGroup(name string) slog.Handler {
	return screenHandler{s: h.s, h: h.h.WithGroup(name)}
}

// screenWriter is a writer (stdout on the bar's terminal) whose output
// goes above the screen's bar.
type screenWriter struct {
	s *screen
	w io.Writer
}

func (sw screenWriter) Write(p []byte) (int, error) {
	var n int
	var err error
	sw.s.above(func() bool {
		n, err = sw.w.Write(p)
		return len(p) > 0 && p[len(p)-1] == '\n'
	})
	return n, err
}
