package prompts

import (
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/seeds"
)

// BenchmarkInstructionPrompt renders the stage-1 prompt with eight demonstrations
// of about 120 bytes, already collapsed, as accepted instructions are.
func BenchmarkInstructionPrompt(b *testing.B) {
	demos := make([]string, 8)
	for i := range demos {
		demos[i] = strings.TrimSpace(strings.Repeat("Write a short poem about the given topic, using vivid imagery. ", 2))
	}
	b.ReportAllocs()
	for b.Loop() {
		InstructionPrompt(StyleCompletion, seeds.TypeA, demos)
	}
}
