package prompts

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/internal/testdata"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/seeds"
)

// referenceFiles pairs the reference's raw instance files with its parsed
// samples and the type of their instructions.
var referenceFiles = []struct {
	instances, samples string
	typ                seeds.Type
}{
	{"io_instances.jsonl", "io_samples.jsonl", seeds.TypeA},
	{"o_instances.jsonl", "o_samples.jsonl", seeds.TypeB},
}

// rawInstance is one line of the reference's *_instances.jsonl.
type rawInstance struct {
	Instruction  string `json:"instruction"`
	RawInstances string `json:"raw_instances"`
}

// sampleRow is one line of the reference's *_samples.jsonl.
type sampleRow struct {
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`
}

// readJSONL decodes every line of a shared test data file.
func readJSONL[T any](t *testing.T, rel string) []T {
	t.Helper()
	f, err := os.Open(testdata.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<22)
	for n := 1; sc.Scan(); n++ {
		var r T
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s:%d: %v", rel, n, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// referenceInstruction is how the reference cleans the instruction of a
// sample row: strip, remove every stop marker, strip.
func referenceInstruction(s string) string {
	return pyStrip(strings.ReplaceAll(pyStrip(s), DefaultStop, ""))
}

// TestParseInstanceCompatReference reproduces io_samples.jsonl from
// io_instances.jsonl and o_samples.jsonl from o_instances.jsonl row for
// row.
func TestParseInstanceCompatReference(t *testing.T) {
	for _, rf := range referenceFiles {
		t.Run(rf.instances, func(t *testing.T) {
			raws := readJSONL[rawInstance](t, "ensemble-instruct/"+rf.instances)
			want := readJSONL[sampleRow](t, "ensemble-instruct/"+rf.samples)
			var got []sampleRow
			for i, r := range raws {
				in, out, ok := ParseInstanceCompat(r.RawInstances, rf.typ)
				if ok {
					got = append(got, sampleRow{referenceInstruction(r.Instruction), in, out})
				}
				// The reference also emits rows for later chunks under the
				// instruction written there; its sample run has none, so
				// the first chunk is the whole story.
				for _, row := range compatRows(r.RawInstances) {
					if row.chunk != 0 {
						t.Errorf("%s:%d: the reference would emit a row of a later instruction: %+v", rf.instances, i+1, row)
					}
				}
			}
			if len(got) != len(want) {
				t.Errorf("got %d rows, want %d", len(got), len(want))
			}
			matched := 0
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Errorf("row %d:\n got  %+v\n want %+v", i+1, got[i], want[i])
					continue
				}
				matched++
			}
			t.Logf("%s: %d/%d rows of %s reproduced", rf.instances, matched, len(want), rf.samples)
		})
	}
}

// robustChange is one line of testdata/reference_robust.jsonl: a reply of
// the reference's instance files on which the robust parser plus the
// default validity rules decides differently from the reference. Every
// line was reviewed by hand; Note says why the robust decision is right.
type robustChange struct {
	File        string `json:"file"`
	Line        int    `json:"line"`
	Instruction string `json:"instruction"`
	// Change is "extra" (the reference has no row, the robust parser a
	// valid one), "dropped" (the reference has a row, the robust parser
	// rejects the reply for Reason) or "changed" (both keep a row, with
	// different fields).
	Change string        `json:"change"`
	Reason filter.Reason `json:"reason,omitempty"`
	Input  string        `json:"input"`
	Output string        `json:"output"`
	Note   string        `json:"note"`
}

const robustGolden = "testdata/reference_robust.jsonl"

// TestParseInstanceRobustReference runs the robust parser and the default
// validity rules over the reference's instance files, counts the valid
// rows against the reference's, and checks every difference against the
// hand-reviewed testdata/reference_robust.jsonl. Each extra row is also
// checked mechanically: valid under the default rules, its fields pieces of
// the reply, and both lying before the reply's first stop marker or new
// "instruction:" block, so no later instance's text is attached.
func TestParseInstanceRobustReference(t *testing.T) {
	var changes []robustChange
	var compatTotal, robustTotal, extra, dropped, changed int
	for _, rf := range referenceFiles {
		raws := readJSONL[rawInstance](t, "ensemble-instruct/"+rf.instances)
		for i, r := range raws {
			ci, co, cok := ParseInstanceCompat(r.RawInstances, rf.typ)
			ri, ro, reason := extractInstance(r.RawInstances, rf.typ, r.Instruction, filter.InstanceRules{})
			rok := reason == ""
			if cok {
				compatTotal++
			}
			if rok {
				robustTotal++
			}
			ch := robustChange{File: rf.instances, Line: i + 1, Instruction: referenceInstruction(r.Instruction), Input: ri, Output: ro}
			switch {
			case !cok && !rok, cok && rok && ci == ri && co == ro:
				continue
			case rok && !cok:
				ch.Change = "extra"
				extra++
				checkExtraRow(t, rf.instances, i+1, rf.typ, r, ri, ro)
			case cok && !rok:
				ch.Change, ch.Reason, ch.Input, ch.Output = "dropped", reason, "", ""
				dropped++
			default:
				ch.Change = "changed"
				changed++
			}
			changes = append(changes, ch)
		}
	}
	t.Logf("valid rows: compat %d, robust %d (+%d extra, -%d dropped, %d with longer fields)",
		compatTotal, robustTotal, extra, dropped, changed)

	if *update {
		writeRobustGolden(t, changes)
		return
	}
	want := readRobustGolden(t)
	if len(changes) != len(want) {
		t.Errorf("%d differences from the reference, %s lists %d (run go test -update, then review)", len(changes), robustGolden, len(want))
	}
	for i := range min(len(changes), len(want)) {
		g, w := changes[i], want[i]
		if w.Note == "" || strings.HasPrefix(w.Note, "UNREVIEWED") {
			t.Errorf("%s line %d (%s:%d) has not been reviewed", robustGolden, i+1, w.File, w.Line)
		}
		w.Note = ""
		if g != w {
			t.Errorf("difference %d:\n got  %+v\n want %+v", i+1, g, w)
		}
	}
}

// checkExtraRow asserts that a row only the robust parser recovers is
// genuinely valid.
func checkExtraRow(t *testing.T, file string, line int, typ seeds.Type, r rawInstance, in, out string) {
	t.Helper()
	if reason := filter.CheckInstance(typ, r.Instruction, in, out, filter.InstanceRules{}); reason != "" {
		t.Errorf("%s:%d: extra row fails the rules: %s", file, line, reason)
	}
	reply := normalizeNewlines(r.RawInstances)
	// Where this instruction's instance must end: the first marker, or the
	// first "instruction:" line after the first line (a leading one is an
	// echo, checked by the parser).
	end := len(reply)
	if i := strings.Index(reply, DefaultStop); i >= 0 {
		if first, _, _ := strings.Cut(strings.TrimLeft(reply, "\n"), "\n"); !strings.Contains(first, DefaultStop) || !strings.HasPrefix(first, "instruction:") {
			end = i
		} else if j := strings.Index(reply[i+len(DefaultStop):], DefaultStop); j >= 0 {
			end = i + len(DefaultStop) + j
		}
	}
	if i := strings.Index(strings.TrimLeft(reply, "\n"), "\ninstruction:"); i >= 0 {
		end = min(end, i+len(reply)-len(strings.TrimLeft(reply, "\n")))
	}
	for name, field := range map[string]string{"input": in, "output": out} {
		if field == "" {
			continue
		}
		at := strings.Index(reply, field)
		if at < 0 {
			t.Errorf("%s:%d: extra row's %s is not in the reply: %q", file, line, name, field)
		} else if at+len(field) > end {
			t.Errorf("%s:%d: extra row's %s runs past the end of the first instance: %q", file, line, name, field)
		}
	}
}

func writeRobustGolden(t *testing.T, changes []robustChange) {
	t.Helper()
	notes := map[[2]any]string{}
	if f, err := os.Open(robustGolden); err == nil {
		for _, w := range decodeRobustGolden(t, f) {
			notes[[2]any{w.File, w.Line}] = w.Note
		}
		f.Close()
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, c := range changes {
		c.Note = notes[[2]any{c.File, c.Line}]
		if c.Note == "" {
			c.Note = "UNREVIEWED: say why the robust decision is right"
		}
		if err := enc.Encode(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.FromSlash(robustGolden), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readRobustGolden(t *testing.T) []robustChange {
	t.Helper()
	f, err := os.Open(robustGolden)
	if err != nil {
		t.Fatalf("%v (run go test -update, then review)", err)
	}
	defer f.Close()
	return decodeRobustGolden(t, f)
}

func decodeRobustGolden(t *testing.T, f *os.File) []robustChange {
	t.Helper()
	var out []robustChange
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	for dec.More() {
		var c robustChange
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: %v", robustGolden, err)
		}
		out = append(out, c)
	}
	return out
}

// TestParseInstance covers the reply formats the robust parser accepts and
// the ones it must reject.
func TestParseInstance(t *testing.T) {
	const instr = "Sort the numbers in ascending order."
	type want struct {
		in, out string
		ok      bool
	}
	cases := []struct {
		name  string
		reply string
		typ   seeds.Type
		instr string // passed to ParseInstanceFor; "" means ParseInstance
		want  want
	}{
		{"plain", "input: 3, 1, 2\noutput: 1, 2, 3", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"leading space as after the prompt", " input: 3, 1, 2\noutput: 1, 2, 3\n", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"trailing marker line", "input: 3, 1, 2\noutput: 1, 2, 3\n|EoS|", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"marker on the output line", "input: 3, 1, 2\noutput: 1, 2, 3 |EoS|", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"capitalised labels", "Input: 3, 1, 2\nOutput: 1, 2, 3", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"upper case, space before colon", "INPUT : 3, 1, 2\nOUTPUT : 1, 2, 3", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"bold labels", "**Input:** 3, 1, 2\n**Output:** 1, 2, 3", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"bold label words", "**Input**: 3, 1, 2\n**Output**: 1, 2, 3", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"heading labels", "### Input:\n3, 1, 2\n\n### Output:\n1, 2, 3", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"bullet labels", "- Input: 3, 1, 2\n- Output: 1, 2, 3", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"CRLF", "input: 3, 1, 2\r\noutput: 1, 2, 3\r\n", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"multi-line fields", "input:\nA: Hi.\nB: Hello.\n\nA: Bye.\noutput: Two speakers.\nThree turns.\n|EoS|", seeds.TypeA, "",
			want{"A: Hi.\nB: Hello.\n\nA: Bye.", "Two speakers.\nThree turns.", true}},
		{"output after a blank line", "output:\n\nFirst paragraph.\n\nSecond paragraph.\n", seeds.TypeB, "",
			want{"", "First paragraph.\n\nSecond paragraph.", true}},
		{"label text inside content", "input: The output: 5\noutput: 5", seeds.TypeA, "", want{"The output: 5", "5", true}},

		// Only the first instance belongs to the instruction.
		{"runs on into another instruction", "input: 3, 1, 2\noutput: 1, 2, 3\n|EoS|\n\ninstruction: Reverse the list.\ninput: 1, 2\noutput: 2, 1\n|EoS|",
			seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"runs on without a marker", "input: 3, 1, 2\noutput: 1, 2, 3\n\ninstruction: Reverse the list.\ninput: 1, 2\noutput: 2, 1",
			seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"never attach a later output (blank line)", "input: 3, 1, 2\n\ninstruction: Reverse the list.\ninput: 1, 2\noutput: 2, 1\n|EoS|",
			seeds.TypeA, "", want{}},
		{"never attach a later output (no blank line)", "input: 3, 1, 2\ninstruction: Reverse the list.\noutput: 2, 1",
			seeds.TypeA, "", want{}},
		{"never attach across a marker", "input: 3, 1, 2 |EoS|\noutput: 1, 2, 3", seeds.TypeA, "", want{}},
		{"never attach across a marker line", "output:\n|EoS|\n\ninstruction: Name a colour.\noutput: Blue.", seeds.TypeB, "", want{}},
		{"second instance of the same instruction", "input: 3, 1, 2\noutput: 1, 2, 3\ninput: 9, 8\noutput: 8, 9", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"starts with another instruction", "\ninstruction: Reverse the list.\ninput: 1, 2\noutput: 2, 1", seeds.TypeA, instr, want{}},
		{"starts with another instruction, no instruction given", "instruction: Reverse the list.\noutput: 2, 1", seeds.TypeB, "", want{}},

		// Chat replies.
		{"chat preamble", "Sure, here is an example:\n\nInput: 3, 1, 2\nOutput: 1, 2, 3", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"chat preamble and closing", "Sure! Here's an example input and output for this task:\n\n**Input:** 3, 1, 2\n\n**Output:** 1, 2, 3\n\nI hope this helps! Let me know if you need more examples.",
			seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"chat reply in a code fence", "```\ninput: 3, 1, 2\noutput: 1, 2, 3\n```", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"code output keeps its fence", "input: sort\noutput:\n```\nsorted(x)\n```", seeds.TypeA, "", want{"sort", "```\nsorted(x)\n```", true}},
		{"example labels", "Example input: 3, 1, 2\nExample output: 1, 2, 3", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"chat heading preamble", "### Example\nInput: 3, 1, 2\nOutput: 1, 2, 3", seeds.TypeA, "", want{"3, 1, 2", "1, 2, 3", true}},
		{"unknown field before the input", "template: {A} {B}\ninput: A. Hello.\noutput: Hello.", seeds.TypeA, "", want{}},
		{"long unlabelled text first", "Here is a story about a dog.\nIt ran.\nIt jumped.\nIt slept.\noutput: Done.", seeds.TypeB, "", want{}},

		// The instruction echoed first.
		{"echo", "instruction: Sort the numbers in ascending order.\ninput: 3, 1, 2\noutput: 1, 2, 3", seeds.TypeA, instr, want{"3, 1, 2", "1, 2, 3", true}},
		{"echo in other case, marker on it", "\nInstruction: sort the numbers in ascending order |EoS|\ninput: 3, 1, 2\noutput: 1, 2, 3\n|EoS|", seeds.TypeA, instr, want{"3, 1, 2", "1, 2, 3", true}},
		{"echo without the instruction to compare", "instruction: Sort the numbers in ascending order.\ninput: 3, 1, 2\noutput: 1, 2, 3", seeds.TypeA, "", want{}},

		// Type B and empty fields.
		{"type B output only", "output: Blue.", seeds.TypeB, "", want{"", "Blue.", true}},
		{"type B placeholder input", "input: <noinput>\noutput: Blue.", seeds.TypeB, "", want{"", "Blue.", true}},
		{"type A placeholder input", "Input: N/A\nOutput: Blue.", seeds.TypeA, "", want{"", "Blue.", true}},
		{"type A empty input is found (the rules reject it)", "input:\noutput: 1, 2, 3", seeds.TypeA, "", want{"", "1, 2, 3", true}},
		{"output first, then input", "output: 1, 2, 3\ninput: 3, 1, 2", seeds.TypeA, "", want{"", "1, 2, 3", true}},
		{"empty output", "input: 3, 1, 2\noutput:\n|EoS|", seeds.TypeA, "", want{}},
		{"empty output before a marker", "output: |EoS|", seeds.TypeB, "", want{}},
		{"no labels", "1, 2, 3", seeds.TypeA, "", want{}},
		{"empty reply", "", seeds.TypeB, "", want{}},
		{"only a marker", "|EoS|\n\ninstruction: Sort it.\noutput: x", seeds.TypeB, "", want{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var in, out string
			var ok bool
			if c.instr == "" {
				in, out, ok = ParseInstance(c.reply, c.typ)
			} else {
				in, out, ok = ParseInstanceFor(c.reply, c.typ, c.instr)
			}
			if got := (want{in, out, ok}); got != c.want {
				t.Errorf("reply %q:\n got  %q, %q, %v\n want %q, %q, %v", c.reply, in, out, ok, c.want.in, c.want.out, c.want.ok)
			}
		})
	}
}

// extractInstance is what the pipeline does with a reply: FindInstance,
// then the validity rules.
func extractInstance(reply string, typ seeds.Type, instruction string, rules filter.InstanceRules) (input, output string, reason filter.Reason) {
	input, output, found := FindInstance(reply, typ, instruction)
	if !found {
		return "", "", filter.ReasonUnparsable
	}
	return input, output, filter.CheckInstance(typ, instruction, input, output, rules)
}

func TestExtractInstance(t *testing.T) {
	const instr = "Sort the numbers in ascending order."
	cases := []struct {
		name   string
		reply  string
		typ    seeds.Type
		rules  filter.InstanceRules
		reason filter.Reason
	}{
		{"kept", "input: 3, 1\noutput: 1, 3", seeds.TypeA, filter.InstanceRules{}, ""},
		{"unparsable", "just text", seeds.TypeA, filter.InstanceRules{}, filter.ReasonUnparsable},
		{"another instruction", "instruction: Reverse it.\noutput: x", seeds.TypeB, filter.InstanceRules{}, filter.ReasonUnparsable},
		{"empty output", "input: 3, 1\noutput: ", seeds.TypeA, filter.InstanceRules{}, filter.ReasonEmptyOutput},
		{"empty input", "output: 1, 3", seeds.TypeA, filter.InstanceRules{}, filter.ReasonEmptyInput},
		{"empty input allowed", "output: 1, 3", seeds.TypeA, filter.CompatInstanceRules(), ""},
		{"input echoes the instruction", "input: Sort the numbers in ascending order\noutput: 1, 3", seeds.TypeA, filter.InstanceRules{}, filter.ReasonInstructionEcho},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, got := extractInstance(c.reply, c.typ, instr, c.rules); got != c.reason {
				t.Errorf("reason = %q, want %q", got, c.reason)
			}
		})
	}
}

func TestParseInstanceCompat(t *testing.T) {
	type want struct {
		in, out string
		ok      bool
	}
	cases := []struct {
		name, reply string
		want        want
	}{
		{"plain", "input: a\noutput: b\n|EoS|", want{"a", "b", true}},
		{"only the second line is the output", "input: a\noutput: b\nmore\n|EoS|", want{"a", "b", true}},
		{"output only", "output: b |EoS|", want{"", "b", true}},
		{"labels removed everywhere", "input: x input: y\noutput: z output:", want{"x  y", "z", true}},
		{"capitalised labels are not labels", "Input: a\nOutput: b", want{}},
		{"multi-line input is lost", "input: a\nb\noutput: c", want{}},
		{"empty output", "input: a\noutput: |EoS|", want{}},
		{"empty input kept", "input:\noutput: b", want{"", "b", true}},
		{"later chunk ignored", "\ninstruction: Reverse the given list now please.\ninput: a\noutput: b", want{}},
		{"caret splits like a blank line", "input: a^b\noutput: c", want{}},
		{"empty first chunk (the reference crashes)", "^input: a\noutput: b", want{}},
		{"splitlines on form feed", "input: a\foutput: b", want{"a", "b", true}},
		{"python whitespace \\x1c is stripped", "input: a\x1f\noutput: b\x1f", want{"a", "b", true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, out, ok := ParseInstanceCompat(c.reply, seeds.TypeA)
			if got := (want{in, out, ok}); got != c.want {
				t.Errorf("got %q, %q, %v; want %q, %q, %v", in, out, ok, c.want.in, c.want.out, c.want.ok)
			}
		})
	}
}

func TestPySplitLines(t *testing.T) {
	cases := map[string][]string{
		"":               nil,
		"a":              {"a"},
		"a\n":            {"a"},
		"a\n\nb":         {"a", "", "b"},
		"a\r\nb\rc":      {"a", "b", "c"},
		"a\u2028b\u0085": {"a", "b"},
		"\n":             {""},
	}
	for in, want := range cases {
		got := pySplitLines(in)
		if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("pySplitLines(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseInstruction(t *testing.T) {
	cases := []struct {
		name  string
		style Style
		reply string
		want  string // "" means not ok
	}{
		{"completion", StyleCompletion, " Sort the numbers in the list. |EoS|", "Sort the numbers in the list."},
		{"completion without marker", StyleCompletion, " Sort the numbers in the list.", "Sort the numbers in the list."},
		{"completion runs on to the next number", StyleCompletion, " Sort the list.\n26. Reverse the list. |EoS|", "Sort the list."},
		{"completion runs on, number with space", StyleCompletion, " Sort the list.\n26 . Reverse it.", "Sort the list."},
		{"completion spans lines", StyleCompletion, " Given a list of words,\n  sort them.", "Given a list of words, sort them."},
		{"completion followed by an input", StyleCompletion, " Sort the list.\n\nInput: 3, 1, 2", "Sort the list."},
		{"completion keeps a leading 'Here is'", StyleCompletion, " Here is a recipe. Turn it into a shopping list.", "Here is a recipe. Turn it into a shopping list."},
		{"completion empty", StyleCompletion, " |EoS|", ""},
		{"completion blank", StyleCompletion, "\n\n", ""},
		{"chat plain", StyleChat, "Classify the animals by habitat.", "Classify the animals by habitat."},
		{"chat preamble on the line", StyleChat, "Here is a new task: Classify the animals by habitat.", "Classify the animals by habitat."},
		{"chat preamble line and quotes", StyleChat, "Sure! Here's a new task:\n\n\"Classify the animals by habitat.\"", "Classify the animals by habitat."},
		{"chat curly quotes", StyleChat, "“Classify the animals by habitat.”", "Classify the animals by habitat."},
		{"chat bold label", StyleChat, "**Task:** Classify the animals by habitat.", "Classify the animals by habitat."},
		{"chat new instruction label", StyleChat, "New instruction: Classify the animals by habitat.", "Classify the animals by habitat."},
		{"chat numbered label", StyleChat, "Task 25: Classify the animals by habitat.", "Classify the animals by habitat."},
		{"chat numbering", StyleChat, "25. Classify the animals by habitat.", "Classify the animals by habitat."},
		{"chat interjection", StyleChat, "Certainly! Classify the animals by habitat.", "Classify the animals by habitat."},
		{"chat markdown heading", StyleChat, "## New task\nClassify the animals by habitat.", "Classify the animals by habitat."},
		{"chat followed by an input", StyleChat, "Task: Classify the animals by habitat.\n\nInput: cat, shark, eagle", "Classify the animals by habitat."},
		{"chat input on the next line", StyleChat, "Classify the animals by habitat.\nInput: cat, shark", "Classify the animals by habitat."},
		{"chat several tasks", StyleChat, "Sure, here's one:\n- Classify the animals by habitat.\n- Name a fish.", "Classify the animals by habitat."},
		{"chat one paragraph on two lines", StyleChat, "Given a list of animals,\nclassify them by habitat.\n\nThis task tests knowledge.", "Given a list of animals, classify them by habitat."},
		{"chat keeps a real 'Here is' task", StyleChat, "Here is a paragraph. Summarize it in one line.", "Here is a paragraph. Summarize it in one line."},
		{"chat short here-is preamble", StyleChat, "Here is a new task.\nClassify the animals by habitat.", "Classify the animals by habitat."},
		{"chat only a preamble", StyleChat, "Sure! Here is a new task:", ""},
		{"chat only an interjection", StyleChat, "Sure!", ""},
		{"chat marker", StyleChat, "Classify the animals. |EoS| extra", "Classify the animals."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := ParseInstruction(c.reply, c.style)
			if ok != (c.want != "") || got != c.want {
				t.Errorf("ParseInstruction(%q) = %q, %v; want %q", c.reply, got, ok, c.want)
			}
		})
	}
}

func TestParseAnswer(t *testing.T) {
	cases := []struct {
		name  string
		style Style
		reply string
		want  string
	}{
		{"completion trims", StyleCompletion, "  42 \n", "42"},
		{"completion cuts at a blank line", StyleCompletion, "42\n\nNext question: what is 6 x 7?", "42"},
		{"completion leading blank line kept", StyleCompletion, "\n\n42\n\nmore", "42"},
		{"completion multi-line", StyleCompletion, "Roses are red\nviolets are blue", "Roses are red\nviolets are blue"},
		{"completion marker", StyleCompletion, "42 |EoS| 43", "42"},
		{"completion label", StyleCompletion, "Answer: 42", "42"},
		{"completion label on its own line", StyleCompletion, "Output:\n42\n\nx", "42"},
		{"chat intro line", StyleChat, "Sure! Here's a haiku about autumn:\n\nLeaves drift on the wind\nthe maple lets go\nquiet fields", "Leaves drift on the wind\nthe maple lets go\nquiet fields"},
		{"chat interjection", StyleChat, "Certainly! The capital of France is Paris.", "The capital of France is Paris."},
		{"chat closing remark", StyleChat, "Paris.\n\nLet me know if you need anything else!", "Paris."},
		{"chat keeps paragraphs", StyleChat, "First paragraph.\n\nSecond paragraph.", "First paragraph.\n\nSecond paragraph."},
		{"chat bold label", StyleChat, "**Answer:** 42", "42"},
		{"chat not clearly boilerplate", StyleChat, "Here is the summary: the cat sat.", "Here is the summary: the cat sat."},
		{"chat interjection alone", StyleChat, "Sure!", "Sure!"},
		{"chat empty", StyleChat, " |EoS|", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ParseAnswer(c.reply, c.style); got != c.want {
				t.Errorf("ParseAnswer(%q) = %q, want %q", c.reply, got, c.want)
			}
		})
	}
}
