package filter

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestInstructionChecks(t *testing.T) {
	c := DefaultInstructionChecks()
	words := func(n int) string { return strings.TrimSpace(strings.Repeat("word ", n)) }
	tests := []struct {
		name  string
		instr string
		want  Reason
	}{
		{"ok", "Summarize the paragraph below.", ""},
		{"empty", "", ReasonTooShort},
		{"three words", "Summarize this text.", ReasonTooShort},
		{"four words", "Summarize this text now.", ""},
		{"unit separator splits words as in Python", "Summarize\x1cthis\x1ftext now", ""},
		{"150 words", words(150), ""},
		{"151 words", words(151), ReasonTooLong},
		{"blacklisted word", "Describe the image in detail please.", ReasonBlacklisted},
		{"blacklist ignores case", "Describe the IMAGES in detail please.", ReasonBlacklisted},
		{"blacklisted phrase", "Tell me how to go to the station.", ReasonBlacklisted},
		{"phrase split by newline is not the phrase", "Tell me how to go\nto the station.", ""},
		{"inside a word is fine", "Explain what a mapping between sets is.", ""},
		{"plotting is not plot", "Explain plotting a course at sea.", ""},
		{"underscore joins words", "Rename the variable file_name to something better.", ""},
		{"punctuation is a boundary", "Name a (map) projection used by sailors.", ReasonBlacklisted},
		{"unicode letters are word characters", "Explain what éfile means in this code.", ""},
		{"digits are word characters", "Open map2 and describe the route.", ""},
		{"bad prefix", "Write a program that sorts numbers.", ReasonBadPrefix},
		{"prefix is case-sensitive", "write a program that sorts numbers.", ""},
		{"punctuation first", "\"Quote\" the famous line in full.", ReasonBadFirstChar},
		{"non-ascii first", "¿Qué hora es ahora mismo aquí?", ReasonBadFirstChar},
		{"digit first", "3 reasons to learn Go quickly.", ""},
		{"length checked before blacklist", "Draw it.", ReasonTooShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Check(tt.instr); got != tt.want {
				t.Errorf("Check(%q) = %q, want %q", tt.instr, got, tt.want)
			}
		})
	}
}

func TestInstructionChecksConfigurable(t *testing.T) {
	c := NewInstructionChecks(1, 5, []string{"json"}, []string{"Ignore"}, false)
	tests := []struct {
		instr string
		want  Reason
	}{
		{"Fix this", ""},
		{"Fix", ReasonTooShort},
		{"one two three four five six", ReasonTooLong},
		{"Convert to JSON please", ReasonBlacklisted},
		{"Describe the image here", ""},
		{"Ignore all rules now", ReasonBadPrefix},
		{"¿Qué hora es?", ""},
	}
	for _, tt := range tests {
		if got := c.Check(tt.instr); got != tt.want {
			t.Errorf("Check(%q) = %q, want %q", tt.instr, got, tt.want)
		}
	}
	// A struct literal works too, without mutating the value.
	lit := InstructionChecks{MinWords: 1, Blacklist: []string{"json"}}
	if got := lit.Check("make json now"); got != ReasonBlacklisted {
		t.Errorf("literal Check = %q", got)
	}
	if lit.blacklistRE != nil {
		t.Error("Check modified a struct literal")
	}
}

func TestPyFields(t *testing.T) {
	got := PyFields(" a\tb\u00a0c\x1dd\u2003e\u0085f \u180eg ")
	want := []string{"a", "b", "c", "d", "e", "f", "\u180eg"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("PyFields = %q, want %q", got, want)
	}
	for _, s := range []string{"", " ", "\u2003\x1c", "a", " a ", "a b", "\xffx y", " a\tb\u00a0c\x1dd\u2003e\u0085f \u180eg ", "\u00a0\u00a0z"} {
		if n := pyFieldCount(s); n != len(PyFields(s)) {
			t.Errorf("pyFieldCount(%q) = %d, want %d", s, n, len(PyFields(s)))
		}
		if h := hasPyField(s); h != (len(PyFields(s)) > 0) {
			t.Errorf("hasPyField(%q) = %v", s, h)
		}
	}
}

// The direct scan of ASCII text answers as the regexp does, on text built
// to sit at the edges: blacklisted words in any case, glued to letters,
// digits, underscores and punctuation, at either end, overlapping.
func TestBlacklistScanMatchesRegexp(t *testing.T) {
	words := append(DefaultBlacklist(), "x_y", "a-b", "c.d")
	c := NewInstructionChecks(0, 0, words, nil, false)
	if c.blacklistASCII == nil {
		t.Fatal("ASCII words did not get the direct scan")
	}
	pieces := []string{"image", "IMAGES", "Graph", "gRaPhs", "pictur", "file", "FILES", "map", "Maps", "draw", "plot",
		"go to", "GO  TO", "goto", "x_y", "x_Y", "a-b", "c.d", "cxd",
		" ", "  ", "\t", "\n", ".", ",", "-", "_", "'", "\"", "(", ")", "/", "0", "7", "a", "Z", "s", "e", "o"}
	rng := rand.New(rand.NewPCG(1, 2))
	checked, matched := 0, 0
	for range 200_000 {
		var b strings.Builder
		for n := rng.IntN(7); n >= 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		s := b.String()
		want := c.blacklistRE.MatchString(s)
		if got := blacklisted(c.blacklistRE, c.blacklistASCII, s); got != want {
			t.Fatalf("%q: scan says %v, regexp %v", s, got, want)
		}
		checked++
		if want {
			matched++
		}
	}
	if matched < checked/10 || matched > checked*9/10 {
		t.Fatalf("%d of %d texts blacklisted: the test does not exercise both answers", matched, checked)
	}
}

// Text beyond ASCII goes to the regexp, whose case folding the scan does
// not have: "ſ" (long s) folds to "s", so "fileſ" is "files".
func TestBlacklistUnicodeFolding(t *testing.T) {
	c := DefaultInstructionChecks()
	for _, s := range []string{"Open the fileſ and count the lines.", "Describe the \u212Aelvin scale and draw it now."} {
		if got := c.Check(s); got != ReasonBlacklisted {
			t.Errorf("Check(%q) = %q, want %q", s, got, ReasonBlacklisted)
		}
	}
	if got := c.Check("Explain why the café is closed on Sundays."); got != "" {
		t.Errorf("Check = %q, want it kept", got)
	}
	// A word beyond ASCII leaves even ASCII text to the regexp: "ſ" in a
	// word matches "s".
	longS := NewInstructionChecks(0, 0, []string{"ſtop"}, nil, false)
	if got := longS.Check("Tell me when to stop the engine."); got != ReasonBlacklisted {
		t.Errorf("Check with the word ſtop = %q, want %q", got, ReasonBlacklisted)
	}
	// A struct literal builds its matcher per call, scan included.
	lit := &InstructionChecks{Blacklist: []string{"plot"}}
	if lit.Check("Summarize the Plot of the novel in two sentences.") != ReasonBlacklisted {
		t.Error("a struct literal's blacklist did not match")
	}
}

func BenchmarkInstructionCheck(b *testing.B) {
	c := DefaultInstructionChecks()
	instrs := []string{
		"Given a list of integers, return the second largest value and explain your reasoning step by step.",
		"Write a short poem about the sea at night, in the style of a sailor's song.",
		"Classify the sentiment of the following product review as positive, negative or neutral.",
		"Summarize the plot of the movie described below in three sentences for a ten-year-old reader.",
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Check(instrs[i%len(instrs)])
		i++
	}
}
