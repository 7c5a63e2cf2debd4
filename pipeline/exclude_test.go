package pipeline

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/filter"
)

// A type checks a candidate against its own entries and the shared
// exclusion index; the answer is bit for bit what one index holding both
// gives.
func TestNoveltyWithExcludeEqualsOneIndex(t *testing.T) {
	ref, _, err := runToBytes(t, newFakeExec(1, 0), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	instrs := instructionsOf(t, ref)
	opts := testOptions()
	opts.Exclude = instrs[:len(instrs)/2]
	r, err := New(newFakeExec(1, 0), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range r.types {
		union := filter.NewIndex()
		for _, s := range tr.seedTexts {
			union.Add(s)
		}
		for _, x := range opts.Exclude {
			union.Add(x)
		}
		// Candidates: every instruction of the run, and each with a word
		// changed (scores near the threshold), checked as the run goes,
		// adding the novel ones to both.
		var cands []string
		for _, s := range instrs {
			cands = append(cands, s)
			if w := strings.Fields(s); len(w) > 0 {
				w[len(w)/2] = "zebra"
				cands = append(cands, strings.Join(w, " "))
			}
		}
		novel := 0
		for _, c := range cands {
			got := tr.novelty(c)
			want := union.Check(c, r.opts.noveltyThreshold())
			if got.Novel != want.Novel || math.Float64bits(got.Max) != math.Float64bits(want.Max) || got.Exact != want.Exact {
				t.Fatalf("type %s, %q: got %+v, one index gives %+v", tr.typ, c, got, want)
			}
			if got.Novel {
				novel++
				tr.index.Add(c)
				union.Add(c)
			}
		}
		if novel == 0 || novel == len(cands) {
			t.Fatalf("type %s: %d of %d candidates novel: the check decided nothing", tr.typ, novel, len(cands))
		}
	}
}

// No kept instruction of a run with --exclude is too close to an excluded
// one, and the exclusion set turned candidates away.
func TestRunWithExclude(t *testing.T) {
	ref, refCounts, err := runToBytes(t, newFakeExec(1, 0), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions()
	opts.Exclude = instructionsOf(t, ref)
	out, counts, err := runToBytes(t, newFakeExec(1, time.Millisecond), opts)
	if err != nil {
		t.Fatal(err)
	}
	ex := filter.NewIndex()
	for _, x := range opts.Exclude {
		ex.Add(x)
	}
	def := opts.withDefaults()
	threshold := def.noveltyThreshold()
	for _, s := range instructionsOf(t, out) {
		if n := ex.Check(s, threshold); !n.Novel {
			t.Errorf("kept %q, Rouge-L %.3f against the exclusion set", s, n.Max)
		}
	}
	notNovel := func(counts map[string]Counts) (n int) {
		for _, c := range counts {
			n += c.Dropped["instruction/"+string(filter.ReasonNotNovel)]
		}
		return n
	}
	if with, without := notNovel(counts), notNovel(refCounts); with <= without {
		t.Errorf("%d candidates not novel with the exclusion set, %d without", with, without)
	}
}

func instructionsOf(t *testing.T, out []byte) []string {
	t.Helper()
	var instrs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var rec struct {
			Instruction string `json:"instruction"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		instrs = append(instrs, rec.Instruction)
	}
	return instrs
}
