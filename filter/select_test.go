package filter

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func ok(texts ...string) []Candidate {
	c := make([]Candidate, len(texts))
	for i, t := range texts {
		c[i] = Candidate{Text: t}
	}
	return c
}

// TestDecideNoDegenerateWinners checks that empty, rejected and failed
// candidates never agree, never win, and leave the vote to the others.
func TestDecideNoDegenerateWinners(t *testing.T) {
	loop := "the same words again and again " + "the same words again and again the same words again and again the same words again and again the same words again and again"
	failed := Candidate{Status: CandidateFailed, Text: "ignored"}
	tests := []struct {
		name   string
		cands  []Candidate
		opts   ConsensusOptions
		pick   int
		reason Reason
		status []CandidateStatus
	}{
		{"two empty outputs are no agreement", ok("x y", "", "  "), ConsensusOptions{},
			-1, ReasonTooFew, []CandidateStatus{CandidateOK, CandidateEmpty, CandidateEmpty}},
		{"punctuation only is empty", ok("?", "!", "ok"), ConsensusOptions{},
			-1, ReasonTooFew, []CandidateStatus{CandidateEmpty, CandidateEmpty, CandidateOK}},
		{"an empty output is left out, the others decide", ok("the cat sat", "", "a cat sat"), ConsensusOptions{},
			0, ReasonAgreement, []CandidateStatus{CandidateOK, CandidateEmpty, CandidateOK}},
		{"eight members: two empty outputs lose to a real pair", ok("", "", "blue sky", "the sky is blue", "Blue sky.", "sky blue", "red", "green sky"), ConsensusOptions{},
			2, ReasonExactMatch, nil},
		{"a failed member does not drop the row", []Candidate{{Text: "four"}, failed, {Text: "Four."}}, ConsensusOptions{},
			0, ReasonExactMatch, []CandidateStatus{CandidateOK, CandidateFailed, CandidateOK}},
		{"one failure among eight", append(ok("alpha beta", "alpha beta gamma", "alpha", "beta alpha", "alpha gamma", "gamma beta alpha", "alpha beta delta"), failed), ConsensusOptions{},
			0, ReasonAgreement, nil},
		{"a loop never wins when rejected", ok(loop, loop, "again the words"), ConsensusOptions{RejectRepetitive: true},
			-1, ReasonTooFew, []CandidateStatus{CandidateRejected, CandidateRejected, CandidateOK}},
		{"a loop is an ordinary output by default", ok(loop, loop, "again the words"), ConsensusOptions{},
			0, ReasonExactMatch, nil},
		{"caller-rejected output is left out", []Candidate{{Text: "yes", Status: CandidateRejected}, {Text: "yes"}, {Text: "no"}}, ConsensusOptions{},
			-1, ReasonLowAgreement, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.cands, Votes{}, tt.opts)
			if d.Pick != tt.pick || d.Reason != tt.reason || d.Kept != (tt.pick >= 0) {
				t.Fatalf("pick %d %s kept=%v, want pick %d %s", d.Pick, d.Reason, d.Kept, tt.pick, tt.reason)
			}
			if d.Kept && d.Output == "" {
				t.Errorf("kept an empty output")
			}
			if tt.status != nil && !slices.Equal(d.Status, tt.status) {
				t.Errorf("status %v, want %v", d.Status, tt.status)
			}
			for i, s := range d.Status {
				if s != CandidateOK && d.Scores[i] != 0 {
					t.Errorf("unusable candidate %d scored %v", i, d.Scores[i])
				}
			}
		})
	}
}

// TestDecideReferenceMatchesConsensus checks that with non-empty outputs
// Decide's default rule is Consensus, bit for bit, on the reference's
// sample and on every ordering of its candidates.
func TestDecideReferenceMatchesConsensus(t *testing.T) {
	samples := readSampleRows(t, "samples.jsonl")
	t5 := readSampleRows(t, "flan-t5-xxl_output.jsonl")
	ul2 := readSampleRows(t, "flan-ul2_output.jsonl")
	perms := [][3]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	compared := 0
	for i, s := range samples {
		texts := []string{s.Output, t5[i].Output, ul2[i].Output}
		if slices.ContainsFunc(texts, func(x string) bool { return NormalizeAnswer(x) == "" }) {
			continue // Consensus keeps the reference's empty-output behaviour
		}
		for _, p := range perms {
			c := []string{texts[p[0]], texts[p[1]], texts[p[2]]}
			want := Consensus(c, ConsensusOptions{})
			got := Decide(ok(c...), Votes{}, ConsensusOptions{})
			if got.Kept != want.Kept || got.Pick != want.Pick || got.Reason != want.Reason || got.Output != want.Output ||
				!slices.Equal(got.Pairwise, want.Pairwise) || !slices.Equal(got.Scores, want.Scores) || got.MinPair != want.MinPair {
				t.Fatalf("row %d order %v: Decide %+v\nConsensus %+v", i, p, got, want)
			}
			compared++
		}
	}
	if compared < 6*140 {
		t.Errorf("compared only %d decisions", compared)
	}
}

func TestSelectWeighted(t *testing.T) {
	// Members 0 and 1 answer alike, 2 differs; 3 is close to 2.
	cands := ok("the red fox jumps", "the red fox jumped", "a dog sleeps", "a dog sleeps here")
	a := Measure(cands, ConsensusOptions{})
	uniform := a.Select(RuleWeighted, Votes{}, ConsensusOptions{})
	if uniform.Best != 0 || !uniform.Kept || uniform.Reason != ReasonAgreement {
		t.Fatalf("uniform weights: best %d %s, want 0 kept", uniform.Best, uniform.Reason)
	}
	// Rank votes with the weight on members 2 and 3.
	d := a.Select(RuleWeighted, Votes{Weights: []float64{0.1, 0.1, 1, 1}}, ConsensusOptions{})
	if d.Pick != 2 || !slices.Equal(d.Weights, []float64{0.1, 0.1, 1, 1}) {
		t.Errorf("weighted: pick %d weights %v, want 2", d.Pick, d.Weights)
	}
	// Scores: member j gives w[j] × (candidates ranked below). With
	// weights 1 everywhere, candidate 0 gets 3 (own) + 2 (from 1) + 0.5 +
	// 0.5 (from 2 and 3, which rank 0 and 1 equally last).
	if got, want := uniform.Scores[0], 3+2+0.5+0.5; got != want {
		t.Errorf("rank votes of candidate 0 = %v, want %v", got, want)
	}
	// Zero or missing weights fall back to equal weights.
	z := a.Select(RuleWeighted, Votes{Weights: []float64{0, 0, 0, 0}}, ConsensusOptions{})
	if z.Pick != uniform.Pick || !slices.Equal(z.Scores, uniform.Scores) {
		t.Errorf("zero weights: %+v, want the uniform decision", z)
	}
	// Nothing agrees: dropped, but Best still names the top candidate.
	far := Measure(ok("alpha", "beta", "gamma"), ConsensusOptions{}).Select(RuleWeighted, Votes{}, ConsensusOptions{})
	if far.Kept || far.Reason != ReasonLowAgreement || far.Best != 0 {
		t.Errorf("no agreement: kept=%v %s best %d, want dropped low agreement, best 0", far.Kept, far.Reason, far.Best)
	}
}

// TestRankVotesRecallWeighted checks that a voter ranks candidates by F2
// of their overlap with its own output: a complete answer with extra words
// over a fragment that F1 would prefer, and exact ties at half a point.
func TestRankVotesRecallWeighted(t *testing.T) {
	voter := "the cat sat on the mat"
	fragment := "the cat sat"                                                  // overlap 3 of 3 tokens: F1 .667, F2 .556
	complete := "yesterday the big cat sat quietly on the old mat by the door" // overlap 6 of 13: F1 .632, F2 .811
	a := Measure(ok(voter, fragment, complete), ConsensusOptions{})
	if a.Pair(0, 1) <= a.Pair(0, 2) {
		t.Fatalf("F1: fragment %.3f, complete %.3f; the case needs F1 to prefer the fragment", a.Pair(0, 1), a.Pair(0, 2))
	}
	// Only the voter has weight: its own output gets 2 points, then the
	// complete answer 1, the fragment 0.
	d := a.Select(RuleWeighted, Votes{Weights: []float64{1, 0, 0}}, ConsensusOptions{})
	if want := []float64{2, 0, 1}; !slices.Equal(d.Scores, want) {
		t.Errorf("scores %v, want %v", d.Scores, want)
	}
	// Two candidates equal to each other tie for every voter but the
	// other two's own votes.
	tie := Measure(ok(voter, "The cat.", "the cat"), ConsensusOptions{})
	d = tie.Select(RuleWeighted, Votes{Weights: []float64{1, 0, 0}}, ConsensusOptions{})
	if want := []float64{2, 0.5, 0.5}; !slices.Equal(d.Scores, want) {
		t.Errorf("tie: scores %v, want %v", d.Scores, want)
	}
	// An Agreement built by hand without the overlaps ranks by F1.
	byHand := &Agreement{Status: a.Status, Texts: a.Texts, Group: a.Group, Pairwise: a.Pairwise}
	d = byHand.Select(RuleWeighted, Votes{Weights: []float64{1, 0, 0}}, ConsensusOptions{})
	if want := []float64{2, 1, 0}; !slices.Equal(d.Scores, want) {
		t.Errorf("by hand: scores %v, want %v (F1 prefers the fragment)", d.Scores, want)
	}
}

// TestMeasureOverlap checks that Lengths and Common are the numbers
// behind Pairwise, for both metrics: Pairwise equals the Rouge F score of
// the normalized texts, bit for bit.
func TestMeasureOverlap(t *testing.T) {
	texts := []string{"The cat sat on the mat.", "a cat, a mat", "", "mat mat cat the", "On the mat sat the cat"}
	for _, m := range []Metric{MetricRougeL, MetricRouge1} {
		a := Measure(ok(texts...), ConsensusOptions{Metric: m})
		k := len(texts)
		for i := range k {
			want := 0
			if a.Usable(i) {
				want = len(TokenizeStem(NormalizeAnswer(texts[i])))
			}
			if a.Lengths[i] != want {
				t.Errorf("%s: Lengths[%d] = %d, want %d", m, i, a.Lengths[i], want)
			}
			for j := i + 1; j < k; j++ {
				p := PairIndex(k, i, j)
				var want Score
				if a.Usable(i) && a.Usable(j) {
					x, y := TokenizeStem(NormalizeAnswer(texts[i])), TokenizeStem(NormalizeAnswer(texts[j]))
					if want = RougeL(x, y); m == MetricRouge1 {
						want = Rouge1(x, y)
					}
				}
				if a.Pairwise[p] != want.F || a.Common[p] != int(math.Round(want.Precision*float64(a.Lengths[i]))) {
					t.Errorf("%s (%d,%d): pairwise %v common %d, want %v (P %v)", m, i, j, a.Pairwise[p], a.Common[p], want.F, want.Precision)
				}
			}
		}
	}
}

// TestAgreementWith checks that scoring the candidates against a text is
// the pairwise agreement: against candidate j's own text, candidate i
// scores Pair(i, j) bit for bit, with the metric the candidates were
// measured with.
func TestAgreementWith(t *testing.T) {
	texts := []string{"The cat sat on the mat.", "a cat, a mat", "", "mat mat cat the", "On the mat sat the cat"}
	for _, m := range []Metric{MetricRougeL, MetricRouge1} {
		a := Measure(ok(texts...), ConsensusOptions{Metric: m})
		for j, text := range texts {
			got, ok := a.AgreementWith("  " + text + "\n")
			if ok != a.Usable(j) {
				t.Errorf("%s: against %q: ok %v, want %v", m, text, ok, a.Usable(j))
			}
			for i := range texts {
				want := 0.0
				if a.Usable(i) && a.Usable(j) {
					want = a.Pair(i, j)
				}
				if got[i] != want {
					t.Errorf("%s: candidate %d against %q: %v, want %v", m, i, text, got[i], want)
				}
			}
		}
		if got, ok := a.AgreementWith("!? —"); ok || slices.ContainsFunc(got, func(f float64) bool { return f != 0 }) {
			t.Errorf("%s: against an empty text: %v, want zeros", m, got)
		}
	}
}

// TestSelectJudge checks the judge rule: the best-judged candidate among
// those with support above the floor; ties by rank votes, then order.
func TestSelectJudge(t *testing.T) {
	cands := ok("paris is the capital", "the capital is paris", "paris", "lyon has rivers")
	a := Measure(cands, ConsensusOptions{})
	tests := []struct {
		name   string
		judge  []float64
		pick   int
		reason Reason
	}{
		{"highest judged", []float64{3, 9, 5, 2}, 1, ReasonJudged},
		{"unsupported candidate cannot win", []float64{3, 4, 5, 10}, 2, ReasonJudged},
		{"tie goes to the higher rank vote", []float64{7, 7, 1, 1}, 0, ReasonJudged},
		{"no judge: weighted", nil, 0, ReasonAgreement},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := a.Select(RuleJudge, Votes{Judge: tt.judge}, ConsensusOptions{})
			if d.Pick != tt.pick || d.Reason != tt.reason {
				t.Errorf("pick %d %s, want %d %s (scores %v)", d.Pick, d.Reason, tt.pick, tt.reason, d.Scores)
			}
			if !slices.Equal(d.Judge, tt.judge) {
				t.Errorf("judge %v, want %v", d.Judge, tt.judge)
			}
		})
	}
	// "lyon has rivers" shares no token with the others: its support is 0.
	if s := a.support(3, a.effectiveWeights(nil)); s != 0 {
		t.Errorf("support of the outlier = %v, want 0", s)
	}
}

func TestParseRule(t *testing.T) {
	for _, r := range Rules() {
		if got, err := ParseRule(string(r)); err != nil || got != r {
			t.Errorf("ParseRule(%q) = %q, %v", r, got, err)
		}
	}
	if got, err := ParseRule(""); err != nil || got != RuleReference {
		t.Errorf(`ParseRule("") = %q, %v`, got, err)
	}
	if _, err := ParseRule("vote"); err == nil {
		t.Error(`ParseRule("vote") succeeded`)
	}
}

func TestCandidateStatusText(t *testing.T) {
	for s := CandidateOK; s <= CandidateRejected; s++ {
		b, _ := s.MarshalText()
		var back CandidateStatus
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%v round-trips to %v, %v", s, back, err)
		}
	}
	var s CandidateStatus
	if err := s.UnmarshalText([]byte("gone")); err == nil {
		t.Error("unknown status decoded")
	}
}

func BenchmarkMeasure8(b *testing.B) {
	base := "The committee reviewed the quarterly budget on Tuesday and agreed to postpone the final vote until more members could attend"
	cands := make([]Candidate, 8)
	for i := range cands {
		cands[i] = Candidate{Text: base[:len(base)-5*i] + " and more words"}
	}
	b.ReportAllocs()
	for b.Loop() {
		Measure(cands, ConsensusOptions{RejectRepetitive: true})
	}
}

func BenchmarkSelectWeighted8(b *testing.B) {
	cands := make([]Candidate, 8)
	for i := range cands {
		cands[i] = Candidate{Text: fmt.Sprintf("answer %d with some shared words %d", i%3, i)}
	}
	a := Measure(cands, ConsensusOptions{})
	w := []float64{0.1, 0.3, 0.3, 0.2, 0.3, 0.4, 0.3, 0.3}
	b.ReportAllocs()
	for b.Loop() {
		a.Select(RuleWeighted, Votes{Weights: w}, ConsensusOptions{})
	}
}
