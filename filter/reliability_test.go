package filter

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestReliabilityCounts(t *testing.T) {
	names := []string{"a", "b", "c"}
	var r Reliability
	r.Observe(names, Decide(ok("the cat sat", "the cat sat down", ""), Votes{}, ConsensusOptions{}))
	r.Observe(names, Decide([]Candidate{{Text: "dogs bark"}, {Status: CandidateFailed}, {Text: "dogs bark loudly"}}, Votes{}, ConsensusOptions{}))
	r.Observe(names, Decide(ok("x", "y", "z"), Votes{}, ConsensusOptions{}))
	s := r.Summary()
	if s.Rows != 3 || s.Kept != 2 {
		t.Fatalf("rows %d kept %d, want 3 and 2", s.Rows, s.Kept)
	}
	want := []MemberReliability{
		{Name: "a", Rows: 3, Won: 2, Best: 3},
		{Name: "b", Rows: 3, Failed: 1},
		{Name: "c", Rows: 3, Empty: 1},
	}
	for i, m := range s.Members {
		w := want[i]
		w.Weight = m.Weight
		if m != w {
			t.Errorf("member %d = %+v, want %+v", i, m, w)
		}
	}
	// a–b agree on row 1 and (x, y) on row 3; a–c on row 2 and row 3.
	ab := (RougeL(TokenizeStem("the cat sat"), TokenizeStem("the cat sat down")).F + 0) / 2
	if got := s.Agreement[0][1]; got != ab || s.Pairs[0][1] != 2 || s.Agreement[1][0] != got {
		t.Errorf("agreement a–b = %v over %d rows, want %v over 2, symmetric", got, s.Pairs[0][1], ab)
	}
	if s.Pairs[1][2] != 1 || s.Pairs[2][2] != 2 || s.Agreement[2][2] != 1 {
		t.Errorf("pairs b–c %d, c–c %d: want 1 and 2", s.Pairs[1][2], s.Pairs[2][2])
	}
	b, err := json.Marshal(s)
	if err != nil || !strings.Contains(string(b), `"name":"b","rows":3,"won":0,"best":0,"empty":0,"failed":1`) {
		t.Errorf("JSON %s, %v", b, err)
	}
}

// TestReliabilityWeights checks the estimate on a pool with a member that
// agrees with nobody and one that is mostly empty: both end up last.
func TestReliabilityWeights(t *testing.T) {
	names := []string{"good1", "good2", "good3", "noise", "mute"}
	var r Reliability
	answers := [][]string{
		{"the sun is a star", "the sun is a big star", "a star the sun is", "banana phone", ""},
		{"water boils at 100 degrees", "water boils at one hundred degrees", "at 100 degrees water boils", "seven tigers", ""},
		{"paris is in france", "paris is a city in france", "france has paris", "purple rain", "paris"},
		{"cats purr", "cats purr when happy", "happy cats purr", "loud engine", ""},
	}
	for _, a := range answers {
		r.Observe(names, Decide(ok(a...), Votes{}, ConsensusOptions{}))
	}
	w := r.Weights(names)
	for i := range 3 {
		if w[i] <= w[3] || w[i] <= w[4] {
			t.Errorf("weights %v: good member %d not above noise and mute", w, i)
		}
	}
	// Unknown members get the mean weight of the known ones.
	w2 := r.Weights([]string{"good1", "newcomer"})
	if w2[1] != w2[0] {
		t.Errorf("newcomer weight %v, want the known mean %v", w2[1], w2[0])
	}
	var empty Reliability
	if w := empty.Weights(names); w[0] != 1 || w[4] != 1 {
		t.Errorf("weights before any row = %v, want 1", w)
	}
	// The estimate is a fixed point.
	s := r.Summary()
	for j := range names {
		num, den := 0.0, 0.0
		for i := range names {
			if i != j && s.Pairs[i][j] > 0 {
				num += w[i] * s.Agreement[i][j]
				den += w[i]
			}
		}
		m := s.Members[j]
		u := float64(m.Rows-m.Empty-m.Rejected-m.Failed) / float64(m.Rows-m.Failed)
		if want := u * num / den; math.Abs(w[j]-want) > 1e-9 {
			t.Errorf("weight %d = %v, fixed point gives %v", j, w[j], want)
		}
	}
	if !strings.Contains(s.String(), "mute") || !strings.Contains(s.String(), " <\n") {
		t.Errorf("summary does not flag the weakest member:\n%s", s)
	}
}

// TestReliabilityString checks the rendering fits 80 columns with long
// names and many members, and says what a reader needs.
func TestReliabilityString(t *testing.T) {
	var r Reliability
	for _, k := range []int{3, 8, 13, 14, 20} {
		names := make([]string, k)
		texts := make([]string, k)
		for i := range k {
			names[i] = strings.Repeat("model-with-a-very-long-name-", 2) + string(rune('a'+i))
			texts[i] = "answer " + strings.Repeat("word ", i%3)
		}
		r.Observe(names, Decide(ok(texts...), Votes{}, ConsensusOptions{}))
		out := r.Summary().String()
		for _, line := range strings.Split(out, "\n") {
			if n := utf8.RuneCountInString(line); n > 80 {
				t.Errorf("k=%d: line of %d columns: %q", k, n, line)
			}
		}
		if !strings.Contains(out, "weight") || !strings.Contains(out, "rows") {
			t.Errorf("k=%d: summary lacks headers:\n%s", k, out)
		}
		if k <= summaryMatrixMax && !strings.Contains(out, "agreement") {
			t.Errorf("k=%d: no agreement matrix:\n%s", k, out)
		}
	}
}

// TestReliabilityJudge checks the judge's record: each member's graded
// outputs and their mean grade, in the summary, its JSON and its text.
func TestReliabilityJudge(t *testing.T) {
	names := []string{"own", "strong-model-with-a-long-name-that-is-cut", "weak"}
	var r Reliability
	for _, row := range []struct {
		cands []Candidate
		grade []float64
	}{
		{ok("paris is the capital", "the capital is paris", "lyon"), []float64{8, 9, 2}},
		{[]Candidate{{Text: "four"}, {Text: "4"}, {Status: CandidateFailed}}, []float64{6, 10, 0}},
		{ok("a", "b", "c"), nil}, // not judged
	} {
		r.Observe(names, Decide(row.cands, Votes{Judge: row.grade}, ConsensusOptions{Rule: RuleJudge}))
	}
	s := r.Summary()
	for i, want := range []struct {
		judged int
		mean   float64
	}{{2, 7}, {2, 9.5}, {1, 2}} {
		if m := s.Members[i]; m.Judged != want.judged || m.JudgeMean != want.mean {
			t.Errorf("member %d: judged %d, mean %v; want %d, %v", i, m.Judged, m.JudgeMean, want.judged, want.mean)
		}
	}
	b, _ := json.Marshal(s.Members[2])
	if !strings.Contains(string(b), `"judged":1,"judge_mean":2`) {
		t.Errorf("JSON %s", b)
	}
	out := s.String()
	for _, want := range []string{" weight judge\n", "  9.5\n", "  2.0 <\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > 80 {
			t.Errorf("line of %d columns: %q", n, line)
		}
	}
	var plain Reliability
	plain.Observe(names, Decide(ok("a", "a", "b"), Votes{}, ConsensusOptions{}))
	if out := plain.Summary().String(); strings.Contains(out, "judge") {
		t.Errorf("a summary without a judge has a judge column:\n%s", out)
	}
}

// TestReliabilityConcurrent feeds one accumulator from several goroutines
// (run with -race).
func TestReliabilityConcurrent(t *testing.T) {
	var r Reliability
	names := []string{"a", "b", "c"}
	d := Decide(ok("one two", "one two three", "two"), Votes{}, ConsensusOptions{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				r.Observe(names, d)
				_ = r.Weights(names)
			}
		})
	}
	wg.Wait()
	if s := r.Summary(); s.Rows != 400 || s.Members[0].Won != 400 {
		t.Errorf("rows %d, won %d: want 400", s.Rows, s.Members[0].Won)
	}
}

func TestReliabilityObservePanics(t *testing.T) {
	d := Decide(ok("a", "b"), Votes{}, ConsensusOptions{})
	defer func() {
		if recover() == nil {
			t.Errorf("Observe with one name for two candidates did not panic")
		}
	}()
	var r Reliability
	r.Observe([]string{"x"}, d)
}

// TestReliabilityRepeatedName checks that a model named twice (it wrote
// the instance and is in the ensemble) counts as two members.
func TestReliabilityRepeatedName(t *testing.T) {
	var r Reliability
	below := -1.0
	d := Decide(ok("one two", "one two three", "four"), Votes{}, ConsensusOptions{MinAgreement: &below})
	r.Observe([]string{"m", "m", "x"}, d)
	r.Observe([]string{"m", "m", "x"}, Decide(ok("five", "six", "six"), Votes{}, ConsensusOptions{}))
	s := r.Summary()
	if len(s.Members) != 3 || s.Members[1].Name != "m#2" || s.Members[0].Won != 1 || s.Members[1].Won != 1 || s.Pairs[0][1] != 2 {
		t.Errorf("summary %+v: want members m, m#2, x, each m winning once, paired twice", s)
	}
	if w := r.Weights([]string{"m", "m", "x"}); w[0] == w[1] {
		t.Errorf("weights %v: the two members named m share a weight", w)
	}
	if got := distinctNames([]string{"a", "b", "a", "a"}); !slices.Equal(got, []string{"a", "b", "a#2", "a#3"}) {
		t.Errorf("distinctNames = %q", got)
	}
}
