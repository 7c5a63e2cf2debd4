package seeds

import (
	"errors"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/internal/testdata"
)

func TestLoadSelfInstruct(t *testing.T) {
	tasks, err := LoadFile(testdata.Path(t, "self-instruct/seed_tasks.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	got := Count(tasks)
	want := Stats{Tasks: 175, TypeA: 125, TypeB: 50, Classification: 26}
	if got != want {
		t.Errorf("Count() = %+v, want %+v", got, want)
	}
	a, b := Split(tasks)
	if len(a) != 125 || len(b) != 50 {
		t.Errorf("Split: %d A, %d B", len(a), len(b))
	}
	if tasks[0].ID != "seed_task_0" || tasks[0].Type() != TypeB {
		t.Errorf("first task = %+v", tasks[0])
	}
}

func TestType(t *testing.T) {
	tests := []struct {
		inst []Instance
		want Type
	}{
		{[]Instance{{Input: "x", Output: "y"}}, TypeA},
		{[]Instance{{Input: "", Output: "y"}}, TypeB},
		{[]Instance{{Input: " \n\t", Output: "y"}}, TypeB},
		{[]Instance{{Input: "", Output: "y"}, {Input: "x", Output: "y"}}, TypeB},
		{nil, TypeB},
	}
	for _, tt := range tests {
		if got := (Task{Instances: tt.inst}).Type(); got != tt.want {
			t.Errorf("Type(%+v) = %s, want %s", tt.inst, got, tt.want)
		}
	}
}

func TestLoadTolerates(t *testing.T) {
	in := "\r\n" +
		`{"id": "a", "instruction": "Do x.", "instances": [{"input": "in", "output": "out"}], "is_classification": true, "extra": 1}` + "\r\n" +
		"   \n" +
		`{"instruction": "Do y.", "instances": [{"output": "out"}]}` + "\n" +
		`{"id": "long", "instruction": "` + strings.Repeat("word ", 400_000) + `", "instances": [{"input": "", "output": "o"}]}`
	tasks, err := Load(strings.NewReader(in), "t.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 3 {
		t.Fatalf("got %d tasks, want 3", len(tasks))
	}
	if tasks[0].Type() != TypeA || !tasks[0].IsClassification {
		t.Errorf("task 0 = %+v", tasks[0])
	}
	if tasks[1].ID != "seed_4" {
		t.Errorf("task without id got id %q, want seed_4 (its line)", tasks[1].ID)
	}
	if len(tasks[2].Instruction) != 2_000_000 {
		t.Errorf("long line: instruction has %d bytes", len(tasks[2].Instruction))
	}
}

// TestLoadReportsEveryProblem checks that a bad file yields every problem,
// each located as FILE:LINE: field: message, and no tasks.
func TestLoadReportsEveryProblem(t *testing.T) {
	lines := []string{
		`{"id": "ok", "instruction": "Fine.", "instances": [{"input": "", "output": "o"}]}`,
		`{"id": "x", "instruction": "Broken.", `,
		`{"id": "no-instr", "instances": [{"input": "", "output": "o"}]}`,
		`{"id": "empty-instr", "instruction": "  ", "instances": [{"input": "", "output": "o"}]}`,
		`{"id": "no-inst", "instruction": "Do.", "instances": []}`,
		`{"id": "empty-out", "instruction": "Do.", "instances": [{"input": "i", "output": " "}]}`,
		"{\"id\": \"utf8\", \"instruction\": \"Bad \xff byte.\", \"instances\": [{\"input\": \"\", \"output\": \"o\"}]}",
		`{"id": "ok", "instruction": "Again.", "instances": [{"input": "", "output": "o"}]}`,
		`{"id": "types", "instruction": 7, "instances": [{"input": "", "output": "o"}], "is_classification": "yes"}`,
		`{"id": "missing-inst", "instruction": "Do."}`,
		`{"id": "second", "instruction": "Do.", "instances": [{"input": "", "output": "o"}, {"input": "x"}]}`,
		`[1, 2]`,
	}
	_, err := Load(strings.NewReader(strings.Join(lines, "\n")), "bad.jsonl")
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want *ValidationError", err)
	}
	want := []string{
		"bad.jsonl:2: invalid JSON",
		"bad.jsonl:3: instruction: missing",
		"bad.jsonl:4: instruction: empty",
		"bad.jsonl:5: instances: no instances",
		"bad.jsonl:6: instances[0].output: empty",
		"bad.jsonl:7: instruction: invalid UTF-8",
		`bad.jsonl:8: id: duplicate id "ok" (first on line 1)`,
		"bad.jsonl:9: instruction: want a string, got a number",
		"bad.jsonl:9: is_classification: want true or false, got a string",
		"bad.jsonl:10: instances: missing",
		"bad.jsonl:11: instances[1].output: missing",
		"bad.jsonl:12: want a JSON object per line, got a list",
	}
	if len(ve.Problems) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ve.Problems), len(want), err)
	}
	for i, p := range ve.Problems {
		if !strings.HasPrefix(p.Error(), want[i]) {
			t.Errorf("problem %d = %q, want prefix %q", i, p.Error(), want[i])
		}
	}
}

func TestLoadLineTooLong(t *testing.T) {
	r := strings.NewReader(strings.Repeat("x", MaxLineBytes+10))
	_, err := Load(r, "huge.jsonl")
	if err == nil || !strings.Contains(err.Error(), "huge.jsonl:1: line longer than") {
		t.Errorf("err = %v", err)
	}
}
