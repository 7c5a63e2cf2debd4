package prompts

import (
	"strings"
	"unicode"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/seeds"
)

// ParseInstanceCompat parses a raw instance reply exactly as the reference
// implementation does (its sample_instances step), so that a run can be
// compared with the reference's data. typ is ignored: the reference decides
// from the reply alone. Its rules, reproduced on Python string semantics:
//
//   - the reply is stripped and split into chunks at every "\n\n" (and at
//     every "^", the character the reference splits on after replacing
//     "\n\n" with it); only the first chunk belongs to this instruction;
//   - the chunk is split into lines (Python's splitlines);
//   - if the first line contains "input:", the first line must contain
//     "input:" and the second "output:": input and output are those two
//     lines with every "input:" / "output:" and every stop marker removed
//     and white space stripped (further lines are ignored);
//   - otherwise, if the first line contains "output:", the output is that
//     line cleaned the same way and the input is empty;
//   - the row is kept only if the output has a word; an empty input is
//     kept, even for a type-A instruction.
//
// The reference also turns later chunks that start with an "instruction:"
// line of more than five words into rows of that other instruction; those
// rows do not belong to this instruction and are never returned (the
// reference's sample run has none). Where the reference crashes (an empty
// first chunk), ok is false. ok=false means empty results.
func ParseInstanceCompat(reply string, typ seeds.Type) (input, output string, ok bool) {
	_ = typ
	rows := compatRows(reply)
	if len(rows) == 0 || rows[0].chunk != 0 {
		return "", "", false
	}
	return rows[0].input, rows[0].output, true
}

// compatRow is one row the reference's parser emits for a reply. chunk is
// the index of the "\n\n"-separated chunk it came from; rows from chunk 0
// belong to the requested instruction, later ones carry their own.
type compatRow struct {
	chunk       int
	instruction string // "" for chunk 0: the requested instruction
	input       string
	output      string
}

// compatRows reproduces every row the reference's parser emits for reply,
// including rows of later chunks, which it attributes to the instruction
// written in the chunk. ParseInstanceCompat keeps only chunk 0; tests use
// the rest to show that the reference's sample data has no such rows.
func compatRows(reply string) []compatRow {
	var rows []compatRow
	chunks := strings.Split(strings.ReplaceAll(pyStrip(reply), "\n\n", "^"), "^")
	for idx, chunk := range chunks {
		lines := pySplitLines(chunk)
		if len(lines) == 0 {
			// The reference raises IndexError here and stops.
			break
		}
		first := lines[0]
		switch {
		case strings.Contains(first, "input:"):
			if idx == 0 && len(lines) > 1 {
				in, out := pyStrip(lines[0]), pyStrip(lines[1])
				if strings.Contains(in, "input:") && strings.Contains(out, "output:") {
					in = compatClean(in, "input:")
					out = compatClean(out, "output:")
					if len(filter.PyFields(out)) > 0 {
						rows = append(rows, compatRow{chunk: idx, input: in, output: out})
					}
				}
			} else if idx > 0 && len(lines) > 2 {
				ins, in, out := pyStrip(lines[0]), pyStrip(lines[1]), pyStrip(lines[2])
				if strings.Contains(ins, "instruction:") && strings.Contains(in, "input:") &&
					strings.Contains(out, "output:") && len(filter.PyFields(ins)) > 5 {
					ins = compatClean(ins, "instruction:")
					in = compatClean(in, "input:")
					out = compatClean(out, "output:")
					if len(filter.PyFields(out)) > 0 {
						rows = append(rows, compatRow{chunk: idx, instruction: ins, input: in, output: out})
					}
				}
			}
		case strings.Contains(first, "output:"):
			if idx == 0 {
				out := compatClean(pyStrip(lines[0]), "output:")
				if len(filter.PyFields(out)) > 0 {
					rows = append(rows, compatRow{chunk: idx, output: out})
				}
			} else if len(lines) > 1 {
				ins, out := pyStrip(lines[0]), pyStrip(lines[1])
				if strings.Contains(ins, "instruction:") && strings.Contains(out, "output:") && len(filter.PyFields(ins)) > 5 {
					ins = compatClean(ins, "instruction:")
					out = compatClean(out, "output:")
					if len(filter.PyFields(out)) > 0 {
						rows = append(rows, compatRow{chunk: idx, instruction: ins, output: out})
					}
				}
			}
		}
	}
	return rows
}

// compatClean is the reference's field cleanup:
// s.replace(label, "").strip().replace("|EoS|", "").strip().
func compatClean(s, label string) string {
	return pyStrip(strings.ReplaceAll(pyStrip(strings.ReplaceAll(s, label, "")), DefaultStop, ""))
}

// pyIsSpace reports whether Python's str.isspace() holds for r: Unicode
// white space plus the separators U+001C to U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pyStrip is Python's str.strip() without arguments.
func pyStrip(s string) string {
	return strings.TrimFunc(s, pyIsSpace)
}

// pyLineBreak reports whether Python's str.splitlines() breaks at r.
func pyLineBreak(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
		return true
	}
	return false
}

// pySplitLines is Python's str.splitlines() without keepends: "\r\n" is one
// break, and a final break does not start an empty line.
func pySplitLines(s string) []string {
	var lines []string
	start := 0
	for i, r := range s {
		if i < start || !pyLineBreak(r) {
			continue
		}
		lines = append(lines, s[start:i])
		start = i + len(string(r))
		if r == '\r' && strings.HasPrefix(s[start:], "\n") {
			start++
		}
	}
	if start < len(s) {
		lines = append(lines, s[start:])
	}
	return lines
}
