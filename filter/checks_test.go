package filter

import (
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
}
