package prompts

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/internal/testdata"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/seeds"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// formatPrompt renders p as readable text for a golden file.
func formatPrompt(p Prompt) string {
	var b strings.Builder
	if p.Messages != nil {
		for _, m := range p.Messages {
			fmt.Fprintf(&b, "===== %s =====\n%s\n", m.Role, m.Content)
		}
	} else {
		// The text ends exactly where the model continues: mark the end.
		fmt.Fprintf(&b, "===== text =====\n%s<END>\n", p.Text)
	}
	b.WriteString("===== stop =====\n")
	for _, s := range p.Stop {
		fmt.Fprintf(&b, "%q\n", s)
	}
	return b.String()
}

// Demonstration instructions for the golden instruction prompts (made up
// for the test; the pipeline passes seeds and machine instructions).
var (
	goldenDemosA = []string{
		"Sort the words in the sentence alphabetically.",
		"Find the verb in the sentence and give its tense.",
		"Turn the recipe into a shopping list:",
		"Say whether the   statement is a fact or an opinion. |EoS|",
		"Estimate how long it takes to read the passage aloud.",
	}
	goldenDemosB = []string{
		"Suggest a name for a pet tortoise.",
		"How many minutes are there in a week?",
		"Describe the smell of rain in two sentences.",
	}
)

func TestPromptsGolden(t *testing.T) {
	const instrA = "Identify the language the sentence is written in."
	const inputA = "Het regent vandaag in Amsterdam."
	const instrB = "Give two reasons to learn to swim."
	cases := []struct {
		name string
		p    Prompt
	}{
		{"instruction_completion_A", InstructionPrompt(StyleCompletion, seeds.TypeA, goldenDemosA)},
		{"instruction_completion_B", InstructionPrompt(StyleCompletion, seeds.TypeB, goldenDemosB)},
		{"instruction_chat_A", InstructionPrompt(StyleChat, seeds.TypeA, goldenDemosA)},
		{"instruction_chat_B", InstructionPrompt(StyleChat, seeds.TypeB, goldenDemosB)},
		{"instance_completion_A", InstancePrompt(StyleCompletion, seeds.TypeA, instrA)},
		{"instance_completion_B", InstancePrompt(StyleCompletion, seeds.TypeB, instrB)},
		{"instance_chat_A", InstancePrompt(StyleChat, seeds.TypeA, instrA)},
		{"instance_chat_B", InstancePrompt(StyleChat, seeds.TypeB, instrB)},
		{"answer_completion_A", AnswerPrompt(StyleCompletion, instrA, inputA)},
		{"answer_completion_B", AnswerPrompt(StyleCompletion, instrB, "")},
		{"answer_chat_A", AnswerPrompt(StyleChat, instrA, inputA)},
		{"answer_chat_B", AnswerPrompt(StyleChat, instrB, "")},
		{"judge_completion_A", JudgePrompt(StyleCompletion, instrA, inputA, "Dutch.")},
		{"judge_completion_B", JudgePrompt(StyleCompletion, instrB, "", "1. Safety in water.\n2. Exercise.")},
		{"judge_chat_A", JudgePrompt(StyleChat, instrA, inputA, "  Dutch. ")},
		{"judge_chat_B", JudgePrompt(StyleChat, instrB, "", "Safety and exercise.")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := formatPrompt(c.p)
			path := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("prompt differs from %s (run go test -update to accept):\n--- got ---\n%s", path, got)
			}
		})
	}
}

func TestInstructionPromptShape(t *testing.T) {
	p := InstructionPrompt(StyleCompletion, seeds.TypeA, goldenDemosA)
	lines := strings.Split(p.Text, "\n")
	if len(lines) != len(goldenDemosA)+2 {
		t.Fatalf("got %d lines, want header + %d demos + next number:\n%s", len(lines), len(goldenDemosA), p.Text)
	}
	for i, d := range goldenDemosA {
		want := fmt.Sprintf("%d. %s %s", i+1, strings.TrimRight(collapseSpace(strings.ReplaceAll(d, DefaultStop, "")), ":"), DefaultStop)
		if lines[i+1] != want {
			t.Errorf("line %d = %q, want %q", i+1, lines[i+1], want)
		}
	}
	if last := lines[len(lines)-1]; last != "6." {
		t.Errorf("prompt ends with %q, want %q", last, "6.")
	}
	if want := []string{DefaultStop, "\n7."}; fmt.Sprint(p.Stop) != fmt.Sprint(want) {
		t.Errorf("Stop = %q, want %q", p.Stop, want)
	}
	// Empty demos are skipped and the numbering stays consecutive.
	p = InstructionPrompt(StyleCompletion, seeds.TypeB, []string{"One task here now.", " |EoS| ", "Two tasks here now."})
	if !strings.HasSuffix(p.Text, "1. One task here now. |EoS|\n2. Two tasks here now. |EoS|\n3.") {
		t.Errorf("empty demo not skipped:\n%s", p.Text)
	}
	for _, typ := range []seeds.Type{seeds.TypeA, seeds.TypeB} {
		c := InstructionPrompt(StyleChat, typ, goldenDemosB)
		if len(c.Messages) != 2 || c.Messages[0].Role != "system" || c.Messages[1].Role != "user" || c.Text != "" {
			t.Errorf("chat prompt: want system + user messages and no text, got %+v", c)
		}
		if len(c.Stop) == 0 {
			t.Error("chat prompt without stops")
		}
	}
}

func TestInstancePromptShape(t *testing.T) {
	for _, typ := range []seeds.Type{seeds.TypeA, seeds.TypeB} {
		p := InstancePrompt(StyleCompletion, typ, "Count the\nwords in the text. |EoS|")
		if !strings.HasSuffix(p.Text, "|EoS|\n\ninstruction: Count the words in the text.\n") {
			t.Errorf("type %s: prompt does not end with the instruction line:\n%s", typ, p.Text[max(0, len(p.Text)-200):])
		}
		wantDemos := map[seeds.Type]int{seeds.TypeA: 18, seeds.TypeB: 15}[typ]
		if n := strings.Count(p.Text, "\n"+DefaultStop+"\n\n"); n != wantDemos {
			t.Errorf("type %s: %d demonstration blocks, want %d", typ, n, wantDemos)
		}
		if n := strings.Count(p.Text, "\ninput:"); (typ == seeds.TypeA) != (n == wantDemos) || (typ == seeds.TypeB && n != 0) {
			t.Errorf("type %s: %d input lines", typ, n)
		}
		if fmt.Sprint(p.Stop) != fmt.Sprint(instanceStops()) {
			t.Errorf("Stop = %q", p.Stop)
		}
		c := InstancePrompt(StyleChat, typ, "Count the words in the text.")
		if len(c.Messages) != 2 || !strings.HasSuffix(c.Messages[1].Content, "instruction: Count the words in the text.") {
			t.Errorf("chat instance prompt: %+v", c.Messages)
		}
	}
}

func TestAnswerPromptExact(t *testing.T) {
	// Exactly the method's zero-shot prompt: instruction + "\n" + input.
	if got := AnswerPrompt(StyleCompletion, "  Reverse the word. ", " stressed\n").Text; got != "Reverse the word.\nstressed" {
		t.Errorf("type A text = %q", got)
	}
	if got := AnswerPrompt(StyleCompletion, "Name a prime number.", "").Text; got != "Name a prime number.\n" {
		t.Errorf("type B text = %q", got)
	}
	c := AnswerPrompt(StyleChat, "Name a prime number.", "")
	if got := c.Messages[1].Content; got != "Name a prime number." {
		t.Errorf("chat user message = %q", got)
	}
}

func TestParseStyle(t *testing.T) {
	for in, want := range map[string]Style{"chat": StyleChat, " Completion ": StyleCompletion} {
		if got, err := ParseStyle(in); err != nil || got != want {
			t.Errorf("ParseStyle(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseStyle("instruct"); err == nil {
		t.Error("ParseStyle(\"instruct\") did not fail")
	}
}

// TestDemos checks the embedded demonstrations: each parses back from the
// rendered prompt exactly, passes the instruction checks, keeps its output
// short, and is not a near copy of a Self-Instruct seed.
func TestDemos(t *testing.T) {
	checks := filter.DefaultInstructionChecks()
	seen := map[string]bool{}
	for typ, demos := range map[seeds.Type][]demo{seeds.TypeA: demosA, seeds.TypeB: demosB} {
		for _, d := range demos {
			if seen[d.Instruction] {
				t.Errorf("duplicate demonstration %q", d.Instruction)
			}
			seen[d.Instruction] = true
			if r := checks.Check(d.Instruction); r != "" {
				t.Errorf("demo %q fails the instruction checks: %s", d.Instruction, r)
			}
			if n := len(strings.Fields(d.Output)); n > 80 {
				t.Errorf("demo %q: output has %d words, want at most 80", d.Instruction, n)
			}
			for _, field := range []string{d.Input, d.Output} {
				if r := filter.DefaultInstructionChecks().Check("Some words here " + field); r == filter.ReasonBlacklisted {
					t.Errorf("demo %q: blacklisted word in %q", d.Instruction, field)
				}
			}
			if r := filter.CheckInstance(typ, d.Instruction, d.Input, d.Output, filter.InstanceRules{}); r != "" {
				t.Errorf("demo %q is not a valid instance: %s", d.Instruction, r)
			}
			// The block as the model would write it parses back exactly.
			block := "input:" + fieldText(d.Input) + "\noutput:" + fieldText(d.Output) + "\n" + DefaultStop
			if typ == seeds.TypeB {
				block = "output:" + fieldText(d.Output) + "\n" + DefaultStop
			}
			in, out, ok := ParseInstanceFor(block, typ, d.Instruction)
			if !ok || in != d.Input || out != d.Output {
				t.Errorf("demo %q does not parse back: got %q, %q, %v", d.Instruction, in, out, ok)
			}
			if !strings.Contains(InstancePrompt(StyleCompletion, typ, "x").Text, "instruction: "+d.Instruction+"\n"+block+"\n\n") {
				t.Errorf("demo %q is not rendered as a block", d.Instruction)
			}
		}
	}
	if len(demosA) != 18 || len(demosB) != 15 {
		t.Errorf("got %d type-A and %d type-B demonstrations, want 18 and 15", len(demosA), len(demosB))
	}

	// Not a near copy of a Self-Instruct seed: Rouge-L well below the
	// novelty threshold.
	f, err := os.Open(testdata.Path(t, "self-instruct/seed_tasks.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var seedInstr [][]string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var task seeds.Task
		if err := json.Unmarshal(sc.Bytes(), &task); err != nil {
			t.Fatal(err)
		}
		seedInstr = append(seedInstr, filter.Tokenize(task.Instruction))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for d := range seen {
		toks := filter.Tokenize(d)
		for _, s := range seedInstr {
			if f := filter.RougeL(toks, s).F; f >= 0.6 {
				t.Errorf("demo %q is too close to a Self-Instruct seed %q (Rouge-L %.2f)", d, strings.Join(s, " "), f)
			}
		}
	}
}

func TestParseDemosErrors(t *testing.T) {
	cases := map[string]string{
		"no marker":      "instruction: a\ninput: b\noutput: c\n",
		"missing input":  "instruction: a\noutput: c\n|EoS|\n",
		"stray text":     "hello\ninstruction: a\ninput: b\noutput: c\n|EoS|\n",
		"repeated label": "instruction: a\ninput: b\ninput: b\noutput: c\n|EoS|\n",
	}
	for name, text := range cases {
		if _, err := parseDemos(text, seeds.TypeA); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := parseDemos("instruction: a\ninput: b\noutput: c\n|EoS|\n", seeds.TypeB); err == nil {
		t.Error("type-B block with an input: no error")
	}
}
