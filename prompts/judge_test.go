package prompts

import (
	"strings"
	"testing"
)

// TestJudgePromptShape checks what the golden files cannot say at a
// glance: the completion prompt ends where the grade goes, type-B prompts
// have no input, and the answer is in the prompt.
func TestJudgePromptShape(t *testing.T) {
	p := JudgePrompt(StyleCompletion, "Say hi.", "", "hello")
	if !strings.HasSuffix(p.Text, "Answer: hello\nScore:") || strings.Contains(p.Text, "Input:") {
		t.Errorf("completion prompt:\n%s<END>", p.Text)
	}
	if p.Stop[0] != "\n" {
		t.Errorf("completion stops %q, want the line break first", p.Stop)
	}
	c := JudgePrompt(StyleChat, "Say hi.", "", "hello")
	if len(c.Messages) != 2 || !strings.Contains(c.Messages[0].Content, "Score: N") || !strings.HasSuffix(c.Messages[1].Content, "hello") {
		t.Errorf("chat prompt: %+v", c.Messages)
	}
}

func TestParseJudgeScore(t *testing.T) {
	tests := []struct {
		reply string
		want  float64
		ok    bool
	}{
		{"Score: 7", 7, true},
		{" 8\n", 8, true},
		{"9.", 9, true},
		{"6/10", 6, true},
		{"**Rating:** 8/10", 8, true},
		{"Score - 4", 4, true},
		{"score = 9.5", 9.5, true},
		{"I would give this answer a score of 6 out of 10.", 6, true},
		{"4 out of 5", 8, true},
		{"The answer is mostly right but misses one item.\n\nScore: 7", 7, true},
		{"A perfect answer would get Score: 10. This one: Score: 3", 3, true},
		{"```json\n{\"score\": 5}\n```", 5, true},
		{`{"reason": "fine", "Score": "8"}`, 8, true},
		{"Score: 0", 1, true},
		{"Score: 85", 0, false},
		{"11/10", 0, false},
		{"The answer is correct.", 0, false},
		{"", 0, false},
		{"Score: 7 |EoS| Score: 2", 7, true},
		{"Scores vary; no grade.", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseJudgeScore(tt.reply, StyleChat)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseJudgeScore(%q, chat) = %v, %v; want %v, %v", tt.reply, got, ok, tt.want, tt.ok)
		}
		if !strings.Contains(strings.TrimSpace(tt.reply), "\n") {
			if got, ok := ParseJudgeScore(tt.reply, StyleCompletion); got != tt.want || ok != tt.ok {
				t.Errorf("ParseJudgeScore(%q, completion) = %v, %v; want %v, %v", tt.reply, got, ok, tt.want, tt.ok)
			}
		}
	}
	// A completion model that ignores the stop invents more examples:
	// only its first line is this answer's grade.
	if got, ok := ParseJudgeScore(" 6\n\nTask: Say hi.\nAnswer: hi\nScore: 10", StyleCompletion); got != 6 || !ok {
		t.Errorf("completion run-on = %v, %v; want 6", got, ok)
	}
	if got, ok := ParseJudgeScore("\n\n 4\nTask: x\nScore: 9", StyleCompletion); got != 4 || !ok {
		t.Errorf("completion with leading blank lines = %v, %v; want 4", got, ok)
	}
}

func FuzzParseJudgeScore(f *testing.F) {
	for _, s := range []string{"Score: 7", " 8\n", "{\"score\": 3}", "**Rating:** 8/10", "7 out of 0", "1e309/10", "9999999999999999999999/1"} {
		f.Add(s)
	}
	for _, r := range fuzzReplies {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		for _, style := range []Style{StyleChat, StyleCompletion} {
			v, ok := ParseJudgeScore(reply, style)
			if ok && (v < JudgeMin || v > JudgeMax || v != v) {
				t.Fatalf("ParseJudgeScore(%q, %s) = %v outside [%d, %d]", reply, style, v, JudgeMin, JudgeMax)
			}
			if !ok && v != 0 {
				t.Fatalf("ParseJudgeScore(%q, %s) = %v with ok false", reply, style, v)
			}
		}
	})
}
