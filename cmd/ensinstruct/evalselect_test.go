package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/llm/llmtest"
)

// TestEvalSelectJudge runs eval-select with a judge served over real HTTP
// by a fake model server: the majority agrees on a wrong answer, the judge
// knows better, and the judge rule's picks are exactly the right answers.
func TestEvalSelectJudge(t *testing.T) {
	srv := llmtest.NewServer(func(c llmtest.Call) string {
		text := c.Text()
		answer := text[strings.LastIndex(text, "Answer"):]
		for _, right := range []string{"Paris", "100 degrees", "purr"} {
			if strings.Contains(answer, right) {
				if c.Messages != nil {
					return "The answer is right.\nScore: 9"
				}
				return " 9"
			}
		}
		if c.Messages != nil {
			return "**Rating:** 2/10"
		}
		return "2\n\nTask: more\nScore: 10"
	})
	defer srv.Close()
	dir := t.TempDir()
	write := func(name string, lines ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	targets := write("targets.jsonl",
		`{"instruction": "What is the capital of France?", "input": "", "target": "Paris is the capital."}`,
		`{"instruction": "At what temperature does water boil?", "input": "At sea level.", "target": "At 100 degrees."}`,
		`{"instruction": "What do cats do when happy?", "target": "They purr."}`)
	own := write("own.jsonl", `{"output": "Lyon is the capital."}`, `{"output": "At 90 degrees."}`, `{"output": "They hiss."}`)
	a1 := write("a.jsonl", `{"output": "Lyon is the capital city."}`, `{"output": "At 90 degrees Celsius."}`, `{"output": "They hiss loudly."}`)
	b1 := write("b.jsonl", `{"output": "Paris is the capital."}`, `{"output": "At 100 degrees."}`, `{"output": "They purr."}`)

	for _, style := range []string{"chat", "completion"} {
		t.Run(style, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
			code := a.execute(context.Background(), []string{"eval-select", "--json", "--targets", targets,
				"--candidates", own, "--candidates", a1, "--candidates", b1,
				"--judge", "ollama:judge@" + srv.URL, "--judge-style", style})
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			var rep struct {
				Rules []struct {
					Rule  string  `json:"rule"`
					Score float64 `json:"score"`
					Kept  int     `json:"kept"`
				} `json:"rules"`
				JudgeCalls      int `json:"judge_calls"`
				JudgeUnreadable int `json:"judge_unreadable"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("%v: %s", err, stdout.String())
			}
			got := map[string]float64{}
			for _, r := range rep.Rules {
				got[r.Rule] = r.Score
			}
			if got["judge"] != 1 || got["weighted"] >= 1 || got["reference"] >= 1 || len(rep.Rules) != 4 {
				t.Errorf("rules %+v: want the judge rule to pick every right answer (score 1) and the others not", rep.Rules)
			}
			if rep.JudgeCalls != 9 || rep.JudgeUnreadable != 0 {
				t.Errorf("%d judge calls, %d unreadable; want 9 and 0", rep.JudgeCalls, rep.JudgeUnreadable)
			}
		})
	}
	if srv.Served() != 18 {
		t.Errorf("server served %d calls, want 18", srv.Served())
	}
}
