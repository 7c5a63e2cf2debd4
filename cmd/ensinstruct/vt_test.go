package main

import (
	"fmt"
	"strconv"
	"strings"
)

// vt is a model of a terminal for tests: enough of a VT100 to replay what
// the progress bar and the logger write to stderr. It wraps a line that
// reaches the right margin as xterm does (the cursor waits in the last
// column until the next character comes), scrolls rows off the top into
// a scrollback it keeps, does not reflow on a resize, and records an
// error for any control character or sequence it does not model, so that
// a test never passes on output it did not understand.
type vt struct {
	cols, rows int
	lines      []vtRow // scrollback, then the screen's rows
	y, x       int     // the cursor: an index into lines, a column; x == cols: waiting to wrap
	err        error
}

// vtRow is a row of the terminal.
type vtRow struct {
	cells   []rune
	wrapped bool // continues the row above: a line longer than the terminal
}

func newVT(cols, rows int) *vt {
	return &vt{cols: cols, rows: rows, lines: make([]vtRow, rows)}
}

// top is the index of the screen's first row.
func (v *vt) top() int { return len(v.lines) - v.rows }

// feed interprets s.
func (v *vt) feed(s string) {
	rs := []rune(s)
	for i := 0; i < len(rs) && v.err == nil; i++ {
		switch r := rs[i]; {
		case r == '\r':
			v.x = 0
		case r == '\n':
			v.x = min(v.x, v.cols-1)
			v.down()
		case r == 0x1b:
			j := i + 2
			if j > len(rs) || rs[i+1] != '[' {
				v.err = fmt.Errorf("escape at rune %d: not a CSI sequence: %q", i, string(rs[i:min(len(rs), i+8)]))
				return
			}
			for j < len(rs) && (rs[j] >= '0' && rs[j] <= '9' || rs[j] == ';') {
				j++
			}
			if j == len(rs) {
				v.err = fmt.Errorf("escape at rune %d: unterminated", i)
				return
			}
			v.csi(string(rs[i+2:j]), rs[j])
			i = j
		case r < 0x20 || r == 0x7f:
			v.err = fmt.Errorf("control character %U at rune %d", r, i)
		default:
			v.put(r)
		}
	}
}

// feedTTY interprets s as a terminal receives what a program writes:
// through a line discipline that turns "\n" into "\r\n" (ONLCR).
func (v *vt) feedTTY(s string) { v.feed(strings.ReplaceAll(s, "\n", "\r\n")) }

// down moves the cursor a row down, scrolling at the bottom.
func (v *vt) down() {
	v.y++
	if v.y == len(v.lines) {
		v.lines = append(v.lines, vtRow{})
	}
}

func (v *vt) put(r rune) {
	if v.x >= v.cols {
		v.x = 0
		v.down()
		v.lines[v.y].wrapped = true
	}
	row := &v.lines[v.y]
	for len(row.cells) <= v.x {
		row.cells = append(row.cells, ' ')
	}
	row.cells[v.x] = r
	v.x++
}

func (v *vt) csi(params string, final rune) {
	n := 1
	if params != "" {
		var err error
		if n, err = strconv.Atoi(params); err != nil {
			v.err = fmt.Errorf("CSI %q%c: bad parameter", params, final)
			return
		}
	}
	switch {
	case final == 'A':
		v.y = max(v.top(), v.y-n)
		v.x = min(v.x, v.cols-1)
	case final == 'K' && (params == "" || params == "0"):
		row := &v.lines[v.y]
		row.cells = row.cells[:min(len(row.cells), v.x)]
	case final == 'K' && params == "2":
		v.lines[v.y].cells = nil
	case final == 'J' && (params == "" || params == "0"):
		row := &v.lines[v.y]
		row.cells = row.cells[:min(len(row.cells), v.x)]
		for i := v.y + 1; i < len(v.lines); i++ {
			v.lines[i] = vtRow{}
		}
	default:
		v.err = fmt.Errorf("CSI %q%c: not modelled", params, final)
	}
}

// text returns the rows, scrollback included, without trailing blanks
// and without the blank rows at the end.
func (v *vt) text() []vtLine {
	var out []vtLine
	for i, r := range v.lines {
		text := string(r.cells)
		if i+1 == len(v.lines) || !v.lines[i+1].wrapped {
			text = strings.TrimRight(text, " ") // a row that wrapped is full
		}
		out = append(out, vtLine{text: text, wrapped: r.wrapped})
	}
	for len(out) > 0 && out[len(out)-1].text == "" && !out[len(out)-1].wrapped {
		out = out[:len(out)-1]
	}
	return out
}

// vtLine is a row as text.
type vtLine struct {
	text    string
	wrapped bool
}

// logical joins wrapped rows into the lines that were written, and says
// how many rows each took.
func logical(rows []vtLine) []logicalLine {
	var out []logicalLine
	for _, r := range rows {
		if r.wrapped && len(out) > 0 {
			last := &out[len(out)-1]
			last.text += r.text
			last.rows++
			continue
		}
		out = append(out, logicalLine{text: r.text, rows: 1})
	}
	return out
}

// logicalLine is a line as written, and the rows it took.
type logicalLine struct {
	text string
	rows int
}
