package prompts

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/seeds"
)

// TestFramesEqualTemplates renders every instruction template through its
// frame and by executing it, for 0 to 12 demonstrations of random text
// (placeholder bytes, braces and newlines among it), and requires the
// same bytes.
func TestFramesEqualTemplates(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Write", " ", "\n", "\x00", "\x00n\x00", "{{.N}}", "%d", "|EoS|", "é", ":"}
	for _, name := range instructionTemplates {
		for _, typeA := range []bool{false, true} {
			for k := range 13 {
				d := instructionData{TypeA: typeA, Stop: DefaultStop, Next: strconv.Itoa(k + 1)}
				for i := range k {
					var b strings.Builder
					for range rng.IntN(12) {
						b.WriteString(alphabet[rng.IntN(len(alphabet))])
					}
					d.Demos = append(d.Demos, instructionDemo{N: strconv.Itoa(i + 1), Text: b.String()})
				}
				if got, want := renderInstruction(name, d), render(name, d); got != want {
					t.Errorf("%s typeA=%v k=%d:\n got %q\nwant %q", name, typeA, k, got, want)
				}
			}
		}
	}
}

// TestInstanceFramesEqualTemplates renders instance prompts through their
// frames and by executing the templates, for instructions of random text
// (slot bytes and template syntax among it), and requires the same bytes.
// The instruction is put on one line before either.
func TestInstanceFramesEqualTemplates(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "Count", " ", "\n", "\x00", instanceSlot, "{{.Instruction}}", "%s", "|EoS|", "é", ":"}
	for range 50 {
		var b strings.Builder
		for range rng.IntN(16) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		instruction := b.String()
		for _, typ := range []seeds.Type{seeds.TypeA, seeds.TypeB} {
			line := collapseSpace(strings.ReplaceAll(instruction, DefaultStop, " "))
			d := instanceData{TypeA: typ == seeds.TypeA, Demos: demosB, Instruction: line, Stop: DefaultStop}
			if d.TypeA {
				d.Demos = demosA
			}
			p := InstancePrompt(StyleCompletion, typ, instruction)
			if want := render("instance.completion.tmpl", d); p.Text != want {
				t.Errorf("completion %s %q:\n got %q\nwant %q", typ, instruction, p.Text, want)
			}
			d.Demos = d.Demos[:chatInstanceDemos]
			c := InstancePrompt(StyleChat, typ, instruction)
			want := chat(render("instance.chat.system.tmpl", d), render("instance.chat.user.tmpl", d), instanceStops())
			if !reflect.DeepEqual(c, want) {
				t.Errorf("chat %s %q:\n got %+v\nwant %+v", typ, instruction, c, want)
			}
		}
	}
}
