package prompts

import (
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/seeds"
)

// fuzzReplies seeds the parser fuzz targets with the shapes models produce.
var fuzzReplies = []string{
	"",
	"input: 3, 1, 2\noutput: 1, 2, 3\n|EoS|\n\ninstruction: Reverse it.\ninput: 1, 2\noutput: 2, 1",
	"**Input:** a\n\n**Output:** b\n\nI hope this helps!",
	"Sure, here is an example:\nINPUT : x\nOUTPUT : y",
	"\ninstruction: Sort the list. |EoS|\ninput: |EoS|\noutput: x",
	"output:\n\n* one\n* two\r\n* three",
	"input: a^b\n\noutput: c\foutput: d\x1c",
	" Sort the list. |EoS|\n26. Reverse it.",
	"Sure! Here's a new task:\n\n\"Classify the animals.\"\n\nInput: cat",
	"1. **Task:** “Rank the cities.”\n2. Other",
	"Certainly! The answer is 42.\n\nLet me know if you need more.",
	"### Output:\n\xff\xfe broken utf-8\n|EoS",
}

// checkPiece fails when got is not a piece of the reply: parsers trim and
// cut, they never invent text.
func checkPiece(t *testing.T, what, got, reply string) {
	t.Helper()
	if got != trimSpace(got) {
		t.Errorf("%s %q is not trimmed", what, got)
	}
	if !strings.Contains(normalizeNewlines(reply), got) {
		t.Errorf("%s %q is not in the reply %q", what, got, reply)
	}
}

func FuzzParseInstance(f *testing.F) {
	for _, r := range fuzzReplies {
		f.Add(r, false, "Sort the list.")
		f.Add(r, true, "")
	}
	f.Fuzz(func(t *testing.T, reply string, typeB bool, instruction string) {
		typ := seeds.TypeA
		if typeB {
			typ = seeds.TypeB
		}
		in, out, ok := ParseInstanceFor(reply, typ, instruction)
		if !ok {
			if in != "" || out != "" {
				t.Fatalf("ok=false with %q, %q", in, out)
			}
		} else {
			if out == "" {
				t.Fatal("ok with an empty output")
			}
			checkPiece(t, "output", out, reply)
			if in != "" {
				checkPiece(t, "input", in, reply)
			}
		}
		// The instruction only matters for a leading echo, which
		// ParseInstance (no instruction) rejects: whatever ParseInstance
		// finds, ParseInstanceFor finds too.
		if in2, out2, ok2 := ParseInstance(reply, typ); ok2 && (!ok || in2 != in || out2 != out) {
			t.Fatalf("ParseInstance = %q, %q; ParseInstanceFor = %q, %q, %v", in2, out2, in, out, ok)
		}
		// extractInstance (FindInstance and the rules) agrees with the parser.
		ei, eo, reason := extractInstance(reply, typ, instruction, filter.CompatInstanceRules())
		if (reason == "") != ok || (ok && (ei != in || eo != out)) {
			t.Fatalf("extractInstance = %q, %q, %q; ParseInstanceFor = %q, %q, %v", ei, eo, reason, in, out, ok)
		}
	})
}

func FuzzParseInstanceCompat(f *testing.F) {
	for _, r := range fuzzReplies {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		in, out, ok := ParseInstanceCompat(reply, seeds.TypeA)
		if !ok {
			if in != "" || out != "" {
				t.Fatalf("ok=false with %q, %q", in, out)
			}
			return
		}
		if len(filter.PyFields(out)) == 0 {
			t.Fatalf("ok with output %q", out)
		}
		// The reference deletes labels and markers inside a line, so its
		// fields are subsequences of the reply rather than substrings.
		for what, s := range map[string]string{"input": in, "output": out} {
			if !isSubsequence(s, reply) {
				t.Fatalf("%s %q is not a subsequence of the reply %q", what, s, reply)
			}
		}
	})
}

// isSubsequence reports whether the bytes of s occur in order in t.
func isSubsequence(s, t string) bool {
	j := 0
	for i := 0; i < len(t) && j < len(s); i++ {
		if t[i] == s[j] {
			j++
		}
	}
	return j == len(s)
}

func FuzzParseInstruction(f *testing.F) {
	for _, r := range fuzzReplies {
		f.Add(r, false)
		f.Add(r, true)
	}
	f.Fuzz(func(t *testing.T, reply string, chatStyle bool) {
		style := StyleCompletion
		if chatStyle {
			style = StyleChat
		}
		got, ok := ParseInstruction(reply, style)
		if !ok {
			if got != "" {
				t.Fatalf("ok=false with %q", got)
			}
			return
		}
		if got == "" || got != collapseSpace(got) {
			t.Fatalf("instruction %q is empty or not on one line", got)
		}
		if strings.Contains(got, DefaultStop) {
			t.Fatalf("instruction %q holds the marker", got)
		}
		// White space is collapsed; otherwise the instruction is a piece
		// of the reply.
		if !strings.Contains(collapseSpace(normalizeNewlines(reply)), got) {
			t.Fatalf("instruction %q is not in the reply %q", got, reply)
		}
	})
}

func FuzzParseAnswer(f *testing.F) {
	for _, r := range fuzzReplies {
		f.Add(r, false)
		f.Add(r, true)
	}
	f.Fuzz(func(t *testing.T, reply string, chatStyle bool) {
		style := StyleCompletion
		if chatStyle {
			style = StyleChat
		}
		got := ParseAnswer(reply, style)
		if got == "" {
			return
		}
		checkPiece(t, "answer", got, reply)
		if strings.Contains(got, DefaultStop) {
			t.Fatalf("answer %q holds the marker", got)
		}
	})
}

// collapseSpace's shortcut for strings already collapsed changes nothing.
func FuzzCollapseSpace(f *testing.F) {
	for _, s := range []string{"", " ", "a", "a b", " a", "a ", "a  b", "a\tb", "a\nb", "é b", "a\u00a0b", "Write a poem."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := collapseSpace(s), strings.Join(strings.Fields(s), " "); got != want {
			t.Fatalf("collapseSpace(%q) = %q, want %q", s, got, want)
		}
	})
}
