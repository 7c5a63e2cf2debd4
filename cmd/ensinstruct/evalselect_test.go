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

// runEvalSelect runs eval-select with args and returns its stdout; any
// exit but 0 fails the test.
func runEvalSelect(t *testing.T, args ...string) *bytes.Buffer {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	if code := a.execute(context.Background(), append([]string{"eval-select"}, args...)); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	return &stdout
}

// evalReport is the part of eval-select's --json report the tests read.
type evalReport struct {
	Options struct {
		JudgeMode string `json:"judge_mode"`
	} `json:"options"`
	Rules []struct {
		Rule  string  `json:"rule"`
		Score float64 `json:"score"`
		Kept  int     `json:"kept"`
	} `json:"rules"`
	JudgeCalls      int `json:"judge_calls"`
	JudgeUnreadable int `json:"judge_unreadable"`
}

// parseEvalReport decodes a --json report, with each rule's score by name.
func parseEvalReport(t *testing.T, stdout *bytes.Buffer) (evalReport, map[string]float64) {
	t.Helper()
	var rep evalReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	got := map[string]float64{}
	for _, r := range rep.Rules {
		got[r.Rule] = r.Score
	}
	return rep, got
}

// judgeFixture writes three rows on which two members agree on a wrong
// answer and the third is right, and returns the targets and the three
// candidate files.
func judgeFixture(t *testing.T) (targets, own, a, b string) {
	dir := t.TempDir()
	write := func(name string, lines ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	targets = write("targets.jsonl",
		`{"instruction": "What is the capital of France?", "input": "", "target": "Paris is the capital."}`,
		`{"instruction": "At what temperature does water boil?", "input": "At sea level.", "target": "At 100 degrees."}`,
		`{"instruction": "What do cats do when happy?", "target": "They purr."}`)
	own = write("own.jsonl", `{"output": "Lyon is the capital."}`, `{"output": "At 90 degrees."}`, `{"output": "They hiss."}`)
	a = write("a.jsonl", `{"output": "Lyon is the capital city."}`, `{"output": "At 90 degrees Celsius."}`, `{"output": "They hiss loudly."}`)
	b = write("b.jsonl", `{"output": "Paris is the capital."}`, `{"output": "At 100 degrees."}`, `{"output": "They purr."}`)
	return targets, own, a, b
}

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
	targets, own, a1, b1 := judgeFixture(t)

	for _, style := range []string{"chat", "completion"} {
		t.Run(style, func(t *testing.T) {
			stdout := runEvalSelect(t, "--json", "--targets", targets,
				"--candidates", own, "--candidates", a1, "--candidates", b1,
				"--judge", "ollama:judge@"+srv.URL, "--judge-style", style)
			rep, got := parseEvalReport(t, stdout)
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

// TestEvalSelectJudgeAnswer runs eval-select with a judge in answer mode
// over real HTTP: the judge answers each task once (the ensemble's answer
// prompt, instruction then input), and the candidate closest to its
// answer is picked, exactly the right answers.
func TestEvalSelectJudgeAnswer(t *testing.T) {
	answers := map[string]string{
		"What is the capital of France?":       "Paris.",
		"At what temperature does water boil?": "Answer: 100 degrees",
		"What do cats do when happy?":          "Cats purr.",
	}
	srv := llmtest.NewServer(func(c llmtest.Call) string {
		task := c.Prompt
		if c.Messages != nil {
			task = c.Messages[len(c.Messages)-1].Content
		}
		instruction, _, _ := strings.Cut(task, "\n")
		if a, ok := answers[instruction]; ok && c.Temperature == 0 {
			return a
		}
		return "Score: 10" // not an answer: the test fails on the picks
	})
	defer srv.Close()
	targets, own, a1, b1 := judgeFixture(t)
	for _, style := range []string{"chat", "completion"} {
		t.Run(style, func(t *testing.T) {
			stdout := runEvalSelect(t, "--json", "--targets", targets,
				"--candidates", own, "--candidates", a1, "--candidates", b1,
				"--judge", "ollama:judge@"+srv.URL, "--judge-style", style, "--judge-mode", "answer")
			rep, got := parseEvalReport(t, stdout)
			if got["judge"] != 1 || got["weighted"] >= 1 || rep.Options.JudgeMode != "answer" || rep.JudgeCalls != 3 {
				t.Errorf("report %+v: want the judge rule to pick every right answer (score 1) with one call per row", rep)
			}
		})
	}
	if srv.Served() != 6 {
		t.Errorf("server served %d calls, want 6", srv.Served())
	}
}
