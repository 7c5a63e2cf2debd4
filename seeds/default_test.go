package seeds_test

import (
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/internal/testdata"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/seeds"
)

func TestDefaultSet(t *testing.T) {
	tasks, err := seeds.Default()
	if err != nil {
		t.Fatalf("embedded seed set is invalid: %v", err)
	}
	s := seeds.Count(tasks)
	if s.TypeA < 125 || s.TypeB < 50 {
		t.Errorf("default set has %d type-A and %d type-B tasks, want at least 125 and 50", s.TypeA, s.TypeB)
	}
	if s.Classification == 0 {
		t.Error("no classification tasks in the default set")
	}
	checks := filter.DefaultInstructionChecks()
	names := map[string]string{}
	for _, task := range tasks {
		if len(task.Instances) != 1 {
			t.Errorf("%s: %d instances, want exactly one", task.ID, len(task.Instances))
		}
		if prev, dup := names[task.Name]; dup {
			t.Errorf("%s: name %q already used by %s", task.ID, task.Name, prev)
		}
		names[task.Name] = task.ID
		// The seeds are demonstrations for generated instructions; a seed
		// the method's own heuristics would drop teaches the wrong thing.
		if r := checks.Check(task.Instruction); r != "" {
			t.Errorf("%s: instruction fails the instruction checks (%s): %q", task.ID, r, task.Instruction)
		}
		wantPrefix := "ens_b_"
		if task.Type() == seeds.TypeA {
			wantPrefix = "ens_a_"
		}
		if !strings.HasPrefix(task.ID, wantPrefix) {
			t.Errorf("%s: type %s task, want an id starting with %s", task.ID, task.Type(), wantPrefix)
		}
	}
	if got := string(seeds.DefaultJSONL()); strings.Count(got, "\n") != len(tasks) {
		t.Errorf("DefaultJSONL has %d lines for %d tasks", strings.Count(got, "\n"), len(tasks))
	}
}

// TestDefaultSetIsOriginal asserts that no default seed is a near-copy of a
// Self-Instruct seed or of another default seed: Rouge-L F without
// stemming, rouge_score tokenization, at most 0.7 for every pair.
func TestDefaultSetIsOriginal(t *testing.T) {
	mine, err := seeds.Default()
	if err != nil {
		t.Fatal(err)
	}
	p := testdata.Path(t, "self-instruct/seed_tasks.jsonl")
	theirs, err := seeds.LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	tok := func(ts []seeds.Task) [][]string {
		out := make([][]string, len(ts))
		for i, t := range ts {
			out[i] = filter.Tokenize(t.Instruction)
		}
		return out
	}
	mt, tt := tok(mine), tok(theirs)
	const limit = 0.7
	worst := 0.0
	for i, a := range mt {
		for j, b := range tt {
			f := filter.RougeL(a, b).F
			worst = max(worst, f)
			if f > limit {
				t.Errorf("%s is a near-copy of Self-Instruct %s (Rouge-L %.3f):\n  %q\n  %q",
					mine[i].ID, theirs[j].ID, f, mine[i].Instruction, theirs[j].Instruction)
			}
		}
		for j := 0; j < i; j++ {
			f := filter.RougeL(a, mt[j]).F
			if f > limit {
				t.Errorf("%s and %s are near-duplicates (Rouge-L %.3f):\n  %q\n  %q",
					mine[i].ID, mine[j].ID, f, mine[i].Instruction, mine[j].Instruction)
			}
		}
	}
	t.Logf("highest Rouge-L against Self-Instruct: %.3f", worst)
}
