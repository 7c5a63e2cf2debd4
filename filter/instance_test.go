package filter

import (
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/seeds"
)

func TestCheckInstance(t *testing.T) {
	const instr = "Sort the numbers in ascending order."
	loop := strings.Repeat("unbelievable, ", 40)
	story := "The man wakes up and walks to the store. He buys bread, milk and eggs, then walks home past the river. " +
		"At home he cooks breakfast for his family and reads the paper while the children get ready for school."
	cases := []struct {
		name          string
		typ           seeds.Type
		input, output string
		rules         InstanceRules
		want          Reason
	}{
		{"valid A", seeds.TypeA, "3, 1, 2", "1, 2, 3", InstanceRules{}, ""},
		{"valid B", seeds.TypeB, "", "Blue.", InstanceRules{}, ""},
		{"B with an input", seeds.TypeB, "some input", "Blue.", InstanceRules{}, ""},
		{"empty output", seeds.TypeA, "3, 1, 2", "", InstanceRules{}, ReasonEmptyOutput},
		{"white-space output", seeds.TypeB, "", " \n\t\x1c", InstanceRules{}, ReasonEmptyOutput},
		{"empty output beats empty input", seeds.TypeA, "", "", InstanceRules{}, ReasonEmptyOutput},
		{"empty input A", seeds.TypeA, "  ", "1, 2, 3", InstanceRules{}, ReasonEmptyInput},
		{"empty input A allowed", seeds.TypeA, "", "1, 2, 3", InstanceRules{AllowEmptyInput: true}, ""},
		{"input echoes instruction", seeds.TypeA, "sort the numbers in ascending order", "1, 2, 3", InstanceRules{}, ReasonInstructionEcho},
		{"input echo allowed", seeds.TypeA, "Sort the numbers in ascending order!", "1, 2, 3", InstanceRules{AllowInstructionEcho: true}, ""},
		{"input contains the instruction and more", seeds.TypeA, "Sort the numbers in ascending order: 3, 1", "1, 3", InstanceRules{}, ""},
		{"repetitive output", seeds.TypeB, "", loop, InstanceRules{}, ReasonRepetitiveOutput},
		{"repetitive output allowed", seeds.TypeB, "", loop, InstanceRules{AllowRepetition: true}, ""},
		{"short repetition is fine", seeds.TypeB, "", "ha ha ha ha ha", InstanceRules{}, ""},
		{"long genuine output", seeds.TypeB, "", story, InstanceRules{}, ""},
		{"compat rules keep everything but an empty output", seeds.TypeA, "", loop, CompatInstanceRules(), ""},
		{"compat rules drop an empty output", seeds.TypeA, "x", " ", CompatInstanceRules(), ReasonEmptyOutput},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := CheckInstance(c.typ, instr, c.input, c.output, c.rules); got != c.want {
				t.Errorf("CheckInstance(%s, %q, %q) = %q, want %q", c.typ, c.input, c.output, got, c.want)
			}
		})
	}
}

func TestInstanceRepetitive(t *testing.T) {
	// A list of distinct items is not a loop even when long.
	var b strings.Builder
	for i := range 40 {
		b.WriteString("item number ")
		b.WriteString(strings.Repeat("x", i+1))
		b.WriteString("\n")
	}
	if instanceRepetitive(b.String()) {
		t.Error("a list of distinct items is flagged as repetitive")
	}
	if !instanceRepetitive(strings.Repeat("My mom is a master in the kitchen.\n", 20)) {
		t.Error("a repeated line is not flagged")
	}
}
