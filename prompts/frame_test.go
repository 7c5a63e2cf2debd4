package prompts

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
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
