package filter

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/internal/testdata"
)

type sampleRow struct {
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`
}

func readSampleRows(t testing.TB, name string) []sampleRow {
	t.Helper()
	f, err := os.Open(testdata.Path(t, "ensemble-instruct/"+name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []sampleRow
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r sampleRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestConsensusReproducesReference runs the rule on the reference's 153
// sample rows with its two ensemble models' outputs and checks that the
// kept rows equal the reference's ensemble output row for row.
func TestConsensusReproducesReference(t *testing.T) {
	samples := readSampleRows(t, "samples.jsonl")
	t5 := readSampleRows(t, "flan-t5-xxl_output.jsonl")
	ul2 := readSampleRows(t, "flan-ul2_output.jsonl")
	want := readSampleRows(t, "ensemble.expected.jsonl")
	if len(samples) != len(t5) || len(samples) != len(ul2) {
		t.Fatalf("inputs are not line-aligned: %d, %d, %d", len(samples), len(t5), len(ul2))
	}
	var got []sampleRow
	reasons := map[Reason]int{}
	for i, s := range samples {
		d := Consensus([]string{s.Output, t5[i].Output, ul2[i].Output}, ConsensusOptions{})
		reasons[d.Reason]++
		if d.Kept {
			got = append(got, sampleRow{strings.TrimSpace(s.Instruction), strings.TrimSpace(s.Input), d.Output})
		}
	}
	t.Logf("reasons: %v", reasons)
	if len(got) != len(want) {
		t.Errorf("kept %d rows, reference kept %d", len(got), len(want))
	}
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i] != want[i] {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestConsensus(t *testing.T) {
	zero, minusOne := 0.0, -1.0
	tests := []struct {
		name   string
		cands  []string
		opts   ConsensusOptions
		pick   int
		reason Reason
		output string
	}{
		{"original matches first", []string{"Paris.", "paris", "Lyon"}, ConsensusOptions{}, 0, ReasonExactMatch, "Paris."},
		{"original matches second", []string{"  Yes ", "no", "YES!"}, ConsensusOptions{}, 0, ReasonExactMatch, "Yes"},
		{"ensemble agree, not original", []string{"A mouse", "A", "a"}, ConsensusOptions{}, 1, ReasonExactMatch, "A"},
		{"all differ, agreement", []string{"the cat sat on the mat", "a cat sat on a mat", "the dog sat"}, ConsensusOptions{}, 0, ReasonAgreement, "the cat sat on the mat"},
		{"no shared token", []string{"alpha beta", "gamma delta", "alpha gamma"}, ConsensusOptions{}, -1, ReasonLowAgreement, ""},
		{"threshold zero keeps overlap", []string{"alpha beta", "beta gamma", "gamma alpha"}, ConsensusOptions{MinAgreement: &zero}, 0, ReasonAgreement, "alpha beta"},
		{"empty ensemble pair agrees, as in the reference", []string{"x y", "", "  "}, ConsensusOptions{}, 1, ReasonExactMatch, ""},
		{"empty agreement pick is dropped", []string{"", "a", "b"}, ConsensusOptions{MinAgreement: &minusOne}, -1, ReasonEmptyPick, ""},
		{"punctuation-only agreement keeps the text", []string{"?", "!", "ok"}, ConsensusOptions{}, 0, ReasonExactMatch, "?"},
		{"k=2 agree", []string{"Four", "four."}, ConsensusOptions{}, 0, ReasonExactMatch, "Four"},
		{"k=2 disagree", []string{"red", "blue"}, ConsensusOptions{}, -1, ReasonLowAgreement, ""},
		{"k=4 larger group wins", []string{"one", "two", "Two", "two!"}, ConsensusOptions{}, 1, ReasonExactMatch, "two"},
		{"k=4 tie goes to the earliest group", []string{"b", "a", "B", "A"}, ConsensusOptions{}, 0, ReasonExactMatch, "b"},
		{"k=1 cannot agree", []string{"alone"}, ConsensusOptions{}, -1, ReasonLowAgreement, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Consensus(tt.cands, tt.opts)
			if d.Pick != tt.pick || d.Reason != tt.reason || d.Output != tt.output || d.Kept != (tt.pick >= 0) {
				t.Errorf("Consensus(%q) = pick %d %s %q kept=%v, want pick %d %s %q",
					tt.cands, d.Pick, d.Reason, d.Output, d.Kept, tt.pick, tt.reason, tt.output)
			}
			k := len(tt.cands)
			if k >= 2 && len(d.Pairwise) != k*(k-1)/2 {
				t.Errorf("%d pairwise scores, want %d", len(d.Pairwise), k*(k-1)/2)
			}
		})
	}
}

// TestConsensusTieOrder checks the reference's tie order: original, then
// the first ensemble output, then the second.
func TestConsensusTieOrder(t *testing.T) {
	// Every pair shares exactly one of two tokens: all sums are equal.
	d := Consensus([]string{"x y", "y z", "z x"}, ConsensusOptions{})
	if d.Pick != 0 || d.Scores[0] != d.Scores[1] || d.Scores[1] != d.Scores[2] {
		t.Errorf("pick %d scores %v, want pick 0 with equal scores", d.Pick, d.Scores)
	}
	// Candidate 1 and 2 tie above candidate 0: candidate 1 wins.
	d = Consensus([]string{"q", "a b c", "a b c d"}, ConsensusOptions{MinAgreement: new(float64)})
	if d.Reason != ReasonLowAgreement {
		t.Errorf("reason %s, want low agreement (candidate 0 shares nothing)", d.Reason)
	}
}

// TestConsensusStems checks that agreement is scored on stemmed tokens:
// "runs" and "running" both stem to "run".
func TestConsensusStems(t *testing.T) {
	d := Consensus([]string{"he runs fast", "he running slowly", "running he is"}, ConsensusOptions{})
	if got, want := d.Pairwise[0], 2.0/3; got != want {
		t.Errorf("Rouge-L of (he runs fast, he running slowly) = %v, want %v", got, want)
	}
}

func TestPairIndex(t *testing.T) {
	for k := 2; k < 7; k++ {
		n := 0
		for i := 0; i < k; i++ {
			for j := i + 1; j < k; j++ {
				if got := PairIndex(k, i, j); got != n {
					t.Errorf("PairIndex(%d, %d, %d) = %d, want %d", k, i, j, got, n)
				}
				if PairIndex(k, j, i) != n {
					t.Errorf("PairIndex not symmetric for (%d, %d)", i, j)
				}
				n++
			}
		}
	}
}

func TestNormalizeAnswer(t *testing.T) {
	tests := []struct{ in, want string }{
		{"  Hello,   World! ", "hello world"},
		{"a , b", "a b"},
		{"a,b", "ab"},
		{"Tab\tand\nnewline\x1cfile-sep", "tab and newline filesep"},
		{"İstanbul", "i\u0307stanbul"},
		{"ΟΔΥΣΣΕΥΣ", "οδυσσευς"},
		{"ΣΑ", "σα"},
		{"«Déjà vu»", "«déjà vu»"},
		{"", ""},
		{"...", ""},
	}
	for _, tt := range tests {
		if got := NormalizeAnswer(tt.in); got != tt.want {
			t.Errorf("NormalizeAnswer(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzConsensus(f *testing.F) {
	f.Add("Paris", "paris.", "Lyon")
	f.Add("the cat sat", "a cat", "")
	f.Add("İ", "Σ", "\x1c")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		for _, m := range []Metric{MetricRougeL, MetricRouge1} {
			d := Consensus([]string{a, b, c}, ConsensusOptions{Metric: m})
			for _, s := range d.Pairwise {
				if s < 0 || s > 1 || math.IsNaN(s) {
					t.Fatalf("pairwise score %v outside [0, 1]", s)
				}
			}
			if d.Kept != (d.Pick >= 0) {
				t.Fatalf("kept=%v with pick %d", d.Kept, d.Pick)
			}
			if d.Kept {
				if d.Output != strings.TrimSpace([]string{a, b, c}[d.Pick]) || (d.Output == "" && d.Reason != ReasonExactMatch) {
					t.Fatalf("output %q is not candidate %d", d.Output, d.Pick)
				}
			}
			// Swapping the two ensemble outputs swaps their pairwise scores.
			e := Consensus([]string{a, c, b}, ConsensusOptions{Metric: m})
			if d.Pairwise[0] != e.Pairwise[1] || d.Pairwise[1] != e.Pairwise[0] || d.Pairwise[2] != e.Pairwise[2] {
				t.Fatalf("pairwise scores not symmetric: %v vs %v", d.Pairwise, e.Pairwise)
			}
		}
	})
}

func BenchmarkConsensus(b *testing.B) {
	o := "The committee reviewed the quarterly budget on Tuesday and agreed to postpone the final vote until more members could attend, citing concerns about the accuracy of the revenue forecast and the timing of the new hiring plan for the research department."
	e1 := "On Tuesday the committee looked at the quarterly budget and decided to delay the vote until more members can attend, because it doubted the revenue forecast and the timing of the research department's hiring plan."
	e2 := "The committee postponed its vote on the quarterly budget after Tuesday's review, citing doubts about the revenue forecast and the hiring plan timing, and waiting for more members to attend."
	b.ReportAllocs()
	for b.Loop() {
		Consensus([]string{o, e1, e2}, ConsensusOptions{})
	}
}
