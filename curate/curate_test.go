package curate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/internal/testdata"
	"github.com/ensinstruct/ensinstruct/pipeline"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/prompts"
)

// The online step's executor in the command is the model pool.
var _ pipeline.Executor = (*llm.Pool)(nil)

// testShared opens a file of the reference sample in testdata/.
func testShared(t testing.TB, name string) *os.File {
	t.Helper()
	return testdata.Open(t, "ensemble-instruct/"+name)
}

// testSource is an in-memory RecordSource. A nil entry of errs at a
// position makes that position a record; otherwise it is that error.
type testSource struct {
	name string
	recs []output.Record
	errs []error
	i    int
}

func testRecords(recs ...output.Record) *testSource {
	return &testSource{name: "mem", recs: recs, errs: make([]error, len(recs))}
}

func (s *testSource) Read() (output.Record, error) {
	if s.i >= len(s.recs) {
		return output.Record{}, io.EOF
	}
	s.i++
	if err := s.errs[s.i-1]; err != nil {
		return output.Record{}, err
	}
	return s.recs[s.i-1], nil
}

func (s *testSource) Name() string { return s.name }
func (s *testSource) Line() int    { return s.i }

// testOutputs makes a candidate source of outputs.
func testOutputs(name string, outs ...string) CandidateSource {
	src := &testSource{name: name, errs: make([]error, len(outs))}
	for _, o := range outs {
		src.recs = append(src.recs, output.Record{Output: o})
	}
	return CandidateSource{Name: name, Records: src}
}

// testResult is what a Run call passed on.
type testResult struct {
	kept     []Kept
	rejected []output.Rejected
	stats    Stats
	err      error
}

func testRun(t testing.TB, src RecordSource, opts Options) testResult {
	t.Helper()
	var r testResult
	r.stats, r.err = Run(context.Background(), src, opts,
		func(fr Kept) error { r.kept = append(r.kept, fr); return nil },
		func(rj output.Rejected) error { r.rejected = append(r.rejected, rj); return nil })
	if r.stats.Read != r.stats.Kept+testSum(r.stats.Dropped) {
		t.Errorf("stats %+v: read != kept + dropped", r.stats)
	}
	return r
}

func testSum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (r testResult) outputs() []string {
	var s []string
	for _, k := range r.kept {
		s = append(s, k.Record.Output)
	}
	return s
}

func (r testResult) reasons() []string {
	var s []string
	for _, k := range r.rejected {
		s = append(s, k.Reason)
	}
	return s
}

// TestFilterReproducesReference runs the offline consensus step on the
// reference's 153 sample rows with its two ensemble models' outputs as
// candidate files, read with output.Reader, and checks that the kept rows
// equal the reference's 105, in order.
func TestFilterReproducesReference(t *testing.T) {
	samples := output.NewReader(testShared(t, "samples.jsonl"), "samples.jsonl")
	t5 := output.NewReader(testShared(t, "flan-t5-xxl_output.jsonl"), "flan-t5-xxl_output.jsonl")
	ul2 := output.NewReader(testShared(t, "flan-ul2_output.jsonl"), "flan-ul2_output.jsonl")
	want := output.NewReader(testShared(t, "ensemble.expected.jsonl"), "ensemble.expected.jsonl")

	r := testRun(t, samples, Options{Candidates: []CandidateSource{
		{Name: "flan-t5-xxl_output.jsonl", Records: t5},
		{Name: "flan-ul2_output.jsonl", Records: ul2},
	}})
	if r.err != nil {
		t.Fatal(r.err)
	}
	var exp []output.Record
	for {
		rec, err := want.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		exp = append(exp, rec)
	}
	if len(r.kept) != len(exp) {
		t.Errorf("kept %d rows, the reference kept %d", len(r.kept), len(exp))
	}
	for i := range min(len(r.kept), len(exp)) {
		if got := r.kept[i].Record; got != exp[i] {
			t.Fatalf("row %d (%s):\n got %+v\nwant %+v", i, r.kept[i].Source, got, exp[i])
		}
	}
	if r.stats.Read != 153 || r.stats.Kept != 105 || r.stats.Misaligned != 0 {
		t.Errorf("stats %+v, want read 153, kept 105, nothing misaligned", r.stats)
	}
	t.Logf("dropped: %v", r.stats.Dropped)
}

func TestFilterNoSteps(t *testing.T) {
	recs := []output.Record{
		{Instruction: " Say hi. ", Output: " hi "},
		{Instruction: "x", Input: "y", Output: ""},
	}
	r := testRun(t, testRecords(recs...), Options{})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.kept) != 2 || r.kept[0].Record != recs[0] || r.kept[1].Record != recs[1] {
		t.Errorf("kept %+v, want the records unchanged", r.kept)
	}
	if r.kept[1].Source != "mem:2" || r.kept[1].Seq != 1 {
		t.Errorf("record 2 located at %q seq %d, want mem:2 seq 1", r.kept[1].Source, r.kept[1].Seq)
	}
}

func TestFilterHeuristics(t *testing.T) {
	recs := []output.Record{
		{Instruction: "Name three primary colors please.", Output: "Red, yellow and blue."},                                  // kept
		{Instruction: "Say hi.", Output: "hi"},                                                                               // too short
		{Instruction: "Draw a picture of a small cat.", Output: "..."},                                                       // blacklisted
		{Instruction: "Write a program that prints hello.", Output: "print('hello')"},                                        // bad prefix
		{Instruction: "¿Qué hora es ahora mismo?", Output: "Las tres."},                                                      // bad first char
		{Instruction: "Summarize the following text briefly.", Input: "A long text.", Output: "   "},                         // empty output
		{Instruction: "Summarize the following text briefly.", Input: "Summarize the following text briefly", Output: "Ok."}, // echo
		{Instruction: "Give me the capital of France please.", Output: "Paris."},                                             // no input: type B, kept
	}
	tests := []struct {
		name string
		opts HeuristicOptions
		want []string
	}{
		{"defaults", HeuristicOptions{}, []string{
			"heuristics/too-short", "heuristics/blacklisted", "heuristics/bad-prefix", "heuristics/bad-first-char",
			"heuristics/empty-output", "heuristics/input-echoes-instruction",
		}},
		{"require input", HeuristicOptions{RequireInput: true}, []string{
			"heuristics/empty-input", "heuristics/too-short", "heuristics/blacklisted", "heuristics/bad-prefix", "heuristics/bad-first-char",
			"heuristics/empty-output", "heuristics/input-echoes-instruction", "heuristics/empty-input",
		}},
		{"custom checks", HeuristicOptions{
			Checks:   filter.NewInstructionChecks(1, 0, nil, nil, false),
			Instance: filter.InstanceRules{AllowInstructionEcho: true},
		}, []string{"heuristics/empty-output"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.opts
			r := testRun(t, testRecords(recs...), Options{Heuristics: &h})
			if r.err != nil {
				t.Fatal(r.err)
			}
			if got := r.reasons(); !slices.Equal(got, tt.want) {
				t.Errorf("reasons\n got %q\nwant %q", got, tt.want)
			}
			if r.stats.Kept+len(tt.want) != len(recs) {
				t.Errorf("kept %d, want %d", r.stats.Kept, len(recs)-len(tt.want))
			}
			for _, k := range r.kept {
				if k.Record != recs[k.Seq] {
					t.Errorf("kept record %d changed: %+v", k.Seq, k.Record)
				}
			}
		})
	}
}

func TestFilterDedup(t *testing.T) {
	recs := []output.Record{
		{Instruction: "Write a short poem about the sea at night.", Output: "1"},
		{Instruction: "Write a short poem about the sea at night!", Output: "2"},     // duplicate of 1
		{Instruction: "Explain how photosynthesis works in plants.", Output: "3"},    // novel
		{Instruction: "Write a short poem about the sea in the night.", Output: "4"}, // near duplicate of 1
		{Instruction: "List five prime numbers below fifty.", Output: "5"},           // excluded
	}
	threshold := pipeline.DefaultNoveltyThreshold
	t.Run("novelty max", func(t *testing.T) {
		r := testRun(t, testRecords(recs...), Options{Dedup: &threshold, NoveltyMax: true, Meta: true})
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got, want := r.outputs(), []string{"1", "3", "5"}; !slices.Equal(got, want) {
			t.Errorf("kept %q, want %q", got, want)
		}
		if got := r.stats.Dropped["dedup/not-novel"]; got != 2 {
			t.Errorf("dropped %v, want 2 dedup/not-novel", r.stats.Dropped)
		}
		for _, rj := range r.rejected {
			if rj.Meta == nil || rj.Meta.NoveltyMax == nil || *rj.Meta.NoveltyMax <= threshold {
				t.Errorf("rejected %q without a novelty score above %v: %+v", rj.Instruction, threshold, rj.Meta)
			}
		}
		if m := r.kept[0].Record.Meta; m == nil || m.NoveltyMax == nil || *m.NoveltyMax != 0 {
			t.Errorf("first record's meta %+v, want novelty_max 0", m)
		}
		for _, k := range r.kept[1:] {
			if m := k.Record.Meta; m == nil || m.NoveltyMax == nil || *m.NoveltyMax < 0 || *m.NoveltyMax > threshold {
				t.Errorf("kept %q: meta %+v, want a novelty score in [0, %v]", k.Record.Instruction, m, threshold)
			}
		}
	})
	t.Run("prefix index", func(t *testing.T) {
		r := testRun(t, testRecords(recs...), Options{Dedup: &threshold, Meta: true})
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got, want := r.outputs(), []string{"1", "3", "5"}; !slices.Equal(got, want) {
			t.Errorf("kept %q, want %q", got, want)
		}
		slow := testRun(t, testRecords(recs...), Options{Dedup: &threshold, NoveltyMax: true, Meta: true})
		if len(r.rejected) != len(slow.rejected) {
			t.Fatalf("rejected %d, the exact index %d", len(r.rejected), len(slow.rejected))
		}
		for i, rj := range r.rejected {
			if rj.Meta == nil || rj.Meta.NoveltyMax == nil || *rj.Meta.NoveltyMax != *slow.rejected[i].Meta.NoveltyMax {
				t.Errorf("rejected %q: meta %+v, want the exact index's novelty score %v", rj.Instruction, rj.Meta, *slow.rejected[i].Meta.NoveltyMax)
			}
		}
		for _, k := range r.kept {
			if m := k.Record.Meta; m == nil || m.NoveltyMax != nil {
				t.Errorf("kept %q: meta %+v, want no novelty score", k.Record.Instruction, m)
			}
		}
	})
	t.Run("exclude", func(t *testing.T) {
		r := testRun(t, testRecords(recs...), Options{
			Dedup: &threshold, Exclude: []string{"List five prime numbers below 50.", "Unrelated text about cooking pasta."},
		})
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got, want := r.outputs(), []string{"1", "3"}; !slices.Equal(got, want) {
			t.Errorf("kept %q, want %q", got, want)
		}
	})
	t.Run("threshold 1 keeps all but exact duplicates", func(t *testing.T) {
		one := 1.0
		r := testRun(t, testRecords(recs...), Options{Dedup: &one})
		if r.err != nil || r.stats.Kept != len(recs) {
			t.Errorf("kept %d (err %v), want all %d: no score is above 1", r.stats.Kept, r.err, len(recs))
		}
	})
	t.Run("equals the index's sequential decisions", func(t *testing.T) {
		synth := synthInstructions(5000, 7)
		x := filter.NewIndex()
		var want []string
		for i, s := range synth {
			if x.Check(s, threshold).Novel {
				x.Add(s)
				want = append(want, fmt.Sprint(i))
			}
		}
		var in []output.Record
		for i, s := range synth {
			in = append(in, output.Record{Instruction: s, Output: fmt.Sprint(i)})
		}
		r := testRun(t, testRecords(in...), Options{Dedup: &threshold})
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got := r.outputs(); !slices.Equal(got, want) {
			t.Errorf("kept %d records, sequential check-then-add keeps %d", len(got), len(want))
		}
	})
}

func TestFilterOfflineConsensus(t *testing.T) {
	recs := []output.Record{
		{Instruction: " Capital of France? ", Input: " ", Output: "Paris"},
		{Instruction: "Colour of the sky?", Output: "green"},
		{Instruction: "Two plus two?", Output: "five"},
		{Instruction: "Say nothing.", Output: "something"},
	}
	cands := []CandidateSource{
		testOutputs("a.jsonl", "paris.", "blue", "4", ""),
		testOutputs("b.jsonl", "Lyon", "Blue!", "four", "  "),
	}
	t.Run("reference rule", func(t *testing.T) {
		r := testRun(t, testRecords(recs...), Options{Candidates: cands, Meta: true})
		if r.err != nil {
			t.Fatal(r.err)
		}
		// Row 4: the two candidates agree on nothing, and the reference
		// keeps that.
		if got, want := r.outputs(), []string{"Paris", "blue", ""}; !slices.Equal(got, want) {
			t.Errorf("kept %q, want %q", got, want)
		}
		if got := r.kept[0].Record; got.Instruction != "Capital of France?" || got.Input != "" {
			t.Errorf("kept %+v, want the instruction and input trimmed", got)
		}
		m := r.kept[1].Record.Meta
		if m == nil || m.Consensus == nil || m.Consensus.Pick != 1 || m.Consensus.Reason != "exact-match" || !slices.Equal(m.Ensemble, []string{"a.jsonl", "b.jsonl"}) {
			t.Errorf("meta of row 2: %+v", m)
		}
		if got, want := r.reasons(), []string{"consensus/dropped-low-agreement"}; !slices.Equal(got, want) {
			t.Errorf("rejected %q, want %q", got, want)
		}
		rj := r.rejected[0]
		if rj.Output != "five" || !slices.Equal(rj.Candidates, []string{"five", "4", "four"}) || rj.Meta.Consensus == nil || len(rj.Meta.Consensus.Pairwise) != 3 {
			t.Errorf("rejected %+v", rj)
		}
	})
	t.Run("drop empty pick", func(t *testing.T) {
		cands := []CandidateSource{
			testOutputs("a.jsonl", "paris.", "blue", "4", ""),
			testOutputs("b.jsonl", "Lyon", "Blue!", "four", "  "),
		}
		// Empty outputs take no part in the vote: two of them no longer
		// agree, and one usable candidate is too few to decide.
		r := testRun(t, testRecords(recs...), Options{Candidates: cands, DropEmptyPick: true})
		if got, want := r.reasons(), []string{"consensus/dropped-low-agreement", "consensus/dropped-too-few"}; r.err != nil || !slices.Equal(got, want) {
			t.Errorf("rejected %q (err %v), want %q", got, r.err, want)
		}
	})
	t.Run("rouge1 and threshold", func(t *testing.T) {
		cands := []CandidateSource{testOutputs("a.jsonl", "the cat sat on the mat")}
		src := testRecords(output.Record{Instruction: "x", Output: "on the mat the cat sat"})
		zero := 0.9
		for _, tc := range []struct {
			metric filter.Metric
			kept   int
		}{{filter.MetricRouge1, 1}, {filter.MetricRougeL, 0}} {
			src.i, cands[0].Records.(*testSource).i = 0, 0
			r := testRun(t, src, Options{Candidates: cands, Consensus: filter.ConsensusOptions{Metric: tc.metric, MinAgreement: &zero}})
			if r.err != nil || r.stats.Kept != tc.kept {
				t.Errorf("%s: kept %d (err %v), want %d", tc.metric, r.stats.Kept, r.err, tc.kept)
			}
		}
	})
}

func TestFilterCandidateCount(t *testing.T) {
	recs := []output.Record{{Instruction: "a", Output: "1"}, {Instruction: "b", Output: "2"}, {Instruction: "c", Output: "3"}}
	tests := []struct {
		name string
		outs []string
		want CandidateCountError
	}{
		{"short", []string{"1", "2"}, CandidateCountError{Input: "in.jsonl", InputCount: 3, File: "c.jsonl", Count: 2}},
		{"long", []string{"1", "2", "3", "4", "5"}, CandidateCountError{Input: "in.jsonl", InputCount: 3, File: "c.jsonl", Count: 5}},
		{"empty", nil, CandidateCountError{Input: "in.jsonl", InputCount: 3, File: "c.jsonl", Count: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRun(t, testRecords(recs...), Options{
				InputName:  "in.jsonl",
				Candidates: []CandidateSource{testOutputs("ok.jsonl", "1", "2", "3"), testOutputs("c.jsonl", tt.outs...)},
			})
			var cce *CandidateCountError
			if !errors.As(r.err, &cce) {
				t.Fatalf("err = %v, want a *CandidateCountError", r.err)
			}
			if *cce != tt.want {
				t.Errorf("got %+v, want %+v", *cce, tt.want)
			}
			for _, s := range []string{"in.jsonl", "c.jsonl"} {
				if !strings.Contains(cce.Error(), s) {
					t.Errorf("message %q does not name %s", cce.Error(), s)
				}
			}
		})
	}
}

func TestFilterInvalidLines(t *testing.T) {
	bad := &output.LineError{File: "in.jsonl", Line: 2, Msg: "invalid JSON"}
	src := func() *testSource {
		s := testRecords(
			output.Record{Instruction: "a", Output: "x"},
			output.Record{},
			output.Record{Instruction: "c", Output: "z"},
		)
		s.errs[1] = bad
		return s
	}
	cands := func() []CandidateSource { return []CandidateSource{testOutputs("c.jsonl", "x", "y", "z")} }

	r := testRun(t, src(), Options{Candidates: cands()})
	if !errors.Is(r.err, output.ErrInvalidLine) || !strings.Contains(r.err.Error(), "in.jsonl:2") {
		t.Errorf("err = %v, want the line error at in.jsonl:2", r.err)
	}

	r = testRun(t, src(), Options{Candidates: cands(), SkipInvalid: true})
	if r.err != nil {
		t.Fatal(r.err)
	}
	// The candidate at the malformed line's position is skipped with it:
	// record 3 still gets candidate "z".
	if got, want := r.outputs(), []string{"x", "z"}; !slices.Equal(got, want) {
		t.Errorf("kept %q, want %q", got, want)
	}
	if r.stats.Invalid != 1 || r.stats.Read != 2 {
		t.Errorf("stats %+v, want 2 read and 1 invalid", r.stats)
	}
	if len(r.rejected) != 1 || r.rejected[0].Reason != "input/invalid" || !strings.Contains(r.rejected[0].Error, "invalid JSON") {
		t.Errorf("rejected %+v", r.rejected)
	}

	// A malformed candidate line drops its record too.
	cs := testOutputs("c.jsonl", "x", "y", "z")
	cs.Records.(*testSource).errs[0] = &output.LineError{File: "c.jsonl", Line: 1, Msg: "invalid JSON"}
	r = testRun(t, testRecords(output.Record{Output: "x"}, output.Record{Output: "y"}, output.Record{Output: "z"}),
		Options{Candidates: []CandidateSource{cs}, SkipInvalid: true})
	if got, want := r.outputs(), []string{"y", "z"}; r.err != nil || !slices.Equal(got, want) {
		t.Errorf("kept %q (err %v), want %q", got, r.err, want)
	}
	// Other errors end the run whatever SkipInvalid says.
	s := src()
	s.errs[1] = errors.New("disk on fire")
	if r = testRun(t, s, Options{SkipInvalid: true}); r.err == nil || !strings.Contains(r.err.Error(), "disk on fire") {
		t.Errorf("err = %v, want the read error", r.err)
	}
}

func TestFilterMisaligned(t *testing.T) {
	recs := []output.Record{
		{Instruction: "Add the numbers.", Input: "1 2", Output: "3"},
		{Instruction: "Reverse the word.", Input: "abc", Output: "cba"},
		{Instruction: "Name a fruit.", Output: "apple"},
	}
	c := &testSource{name: "c.jsonl", errs: make([]error, 3), recs: []output.Record{
		{Instruction: "Add the numbers.\n\n1 2", Output: "3"}, // chat form: aligned
		{Instruction: "Reverse the word.", Output: "cba"},     // no input: aligned
		{Instruction: "Name a vegetable.", Output: "leek"},    // misaligned
	}}
	r := testRun(t, testRecords(recs...), Options{Candidates: []CandidateSource{{Name: "c.jsonl", Records: c}}})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.stats.Misaligned != 1 || r.stats.FirstMisaligned != "c.jsonl:3" {
		t.Errorf("misaligned %d at %q, want 1 at c.jsonl:3", r.stats.Misaligned, r.stats.FirstMisaligned)
	}
}

func TestFilterValidates(t *testing.T) {
	bad, neg := 1.5, -1
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"threshold", Options{Dedup: &bad}, "outside [0, 1]"},
		{"exclude without dedup", Options{Exclude: []string{"x"}}, "need the dedup step"},
		{"ensemble without executor", Options{Ensemble: []llm.ModelInfo{{Name: "m", Style: llm.StyleChat}}}, "executor"},
		{"style", Options{Ensemble: []llm.ModelInfo{{Name: "m"}}, Executor: &fakeExec{}}, "style"},
		{"metric", Options{Consensus: filter.ConsensusOptions{Metric: "bleu"}}, "metric"},
		{"candidates", Options{Candidates: []CandidateSource{{Name: "c"}}}, "no records"},
		{"concurrency", Options{Concurrency: neg}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), testRecords(), tt.opts, func(Kept) error { return nil }, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestFilterParallelEqualsSequential runs every offline step over
// synthetic data with one worker and with several and compares all that
// was passed on.
func TestFilterParallelEqualsSequential(t *testing.T) {
	recs, cands := synthConsensus(6000, 2, 3)
	threshold := 0.6
	run := func(workers int) []byte {
		var c []CandidateSource
		for j, outs := range cands {
			c = append(c, testOutputs(fmt.Sprintf("c%d", j), outs...))
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		_, err := Run(context.Background(), testRecords(recs...), Options{
			Heuristics: &HeuristicOptions{}, Dedup: &threshold, Candidates: c, Meta: true, Workers: workers,
		}, func(fr Kept) error { return enc.Encode(fr) }, func(rj output.Rejected) error { return enc.Encode(rj) })
		if err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	one, four := run(1), run(4)
	if !bytes.Equal(one, four) {
		t.Error("one worker and four workers passed on different results")
	}
}

// TestFilterStreams checks that with every step on, a record is passed
// on before the source gives the next one.
func TestFilterStreams(t *testing.T) {
	feed := make(chan output.Record)
	cfeed := make(chan output.Record, 10)
	kept := make(chan Kept, 10)
	threshold := 0.7
	done := make(chan error, 1)
	exec := &fakeExec{answer: func(string, string) string { return "x" }}
	go func() {
		_, err := Run(context.Background(), chanSource(feed), Options{
			Heuristics: &HeuristicOptions{},
			Dedup:      &threshold,
			Candidates: []CandidateSource{{Name: "c", Records: chanSource(cfeed)}},
			Ensemble:   []llm.ModelInfo{{Name: "m", Style: llm.StyleCompletion}},
			Executor:   exec,
		}, func(fr Kept) error { kept <- fr; return nil }, nil)
		done <- err
	}()
	instr := []string{"Name three primary colors please.", "Explain how rain forms in clouds.", "List four animals that can fly."}
	for i, s := range instr {
		cfeed <- output.Record{Output: "x"}
		feed <- output.Record{Instruction: s, Output: "x"}
		select {
		case fr := <-kept:
			if fr.Seq != i {
				t.Fatalf("got record %d, want %d", fr.Seq, i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("record %d was not passed on while the source waits", i)
		}
	}
	close(feed)
	close(cfeed)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// chanSource reads records from a channel until it is closed.
type chanSource chan output.Record

func (c chanSource) Read() (output.Record, error) {
	r, ok := <-c
	if !ok {
		return output.Record{}, io.EOF
	}
	return r, nil
}

// fakeExec is an in-process executor: each model answers with a
// deterministic function of its prompt after a random delay, and the
// calls are recorded.
type fakeExec struct {
	answer   func(model, prompt string) string
	delay    func(model, prompt string) time.Duration
	fail     string // a prompt containing this fails
	mu       sync.Mutex
	reqs     map[string][]llm.Request
	inFlight atomic.Int64
	peak     atomic.Int64
}

func (f *fakeExec) Do(ctx context.Context, model string, req llm.Request, sample int) (llm.Response, error) {
	prompt := req.Prompt
	for _, m := range req.Messages {
		prompt += m.Content + "\n"
	}
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	f.mu.Lock()
	if f.reqs == nil {
		f.reqs = map[string][]llm.Request{}
	}
	f.reqs[model] = append(f.reqs[model], req)
	f.mu.Unlock()
	if f.delay != nil {
		select {
		case <-time.After(f.delay(model, prompt)):
		case <-ctx.Done():
			return llm.Response{}, ctx.Err()
		}
	}
	if f.fail != "" && strings.Contains(prompt, f.fail) {
		return llm.Response{}, fmt.Errorf("model %q: %w", model, errors.New("boom"))
	}
	return llm.Response{Text: f.answer(model, prompt)}, nil
}

func TestFilterOnline(t *testing.T) {
	var recs []output.Record
	for i := range 200 {
		recs = append(recs, output.Record{Instruction: fmt.Sprintf("Question number %d?", i), Input: fmt.Sprintf("input %d", i), Output: fmt.Sprintf("answer %d", i)})
	}
	// Model a agrees with records whose number is even, model b (a chat
	// model, whose reply has a preamble) with those divisible by 3; when
	// both disagree with the record they disagree with each other too.
	answer := func(model, prompt string) string {
		var n int
		fmt.Sscanf(prompt[strings.Index(prompt, "number ")+len("number "):], "%d", &n)
		switch {
		case model == "a" && n%2 == 0, model == "b" && n%3 == 0:
			return fmt.Sprintf("Answer %d.", n)
		case model == "a":
			return "zzz"
		}
		return "Sure! Here is the answer:\nqqq"
	}
	exec := &fakeExec{
		answer: answer,
		delay: func(model, prompt string) time.Duration {
			return time.Duration(len(prompt)*7%5) * time.Millisecond
		},
	}
	models := []llm.ModelInfo{{Name: "a", Style: llm.StyleCompletion}, {Name: "b", Style: llm.StyleChat}}
	r := testRun(t, testRecords(recs...), Options{Ensemble: models, Executor: exec, Concurrency: 5, Meta: true})
	if r.err != nil {
		t.Fatal(r.err)
	}
	var want []string
	for i := range recs {
		if i%2 == 0 || i%3 == 0 {
			want = append(want, fmt.Sprintf("answer %d", i))
		}
	}
	if got := r.outputs(); !slices.Equal(got, want) {
		t.Errorf("kept %d records %q…, want %d in input order", len(got), got[:min(5, len(got))], len(want))
	}
	if got := r.stats.Dropped["ensemble/dropped-low-agreement"]; got != len(recs)-len(want) {
		t.Errorf("dropped %v", r.stats.Dropped)
	}
	if r.stats.EnsembleCalls != 2*len(recs) {
		t.Errorf("%d ensemble calls, want %d", r.stats.EnsembleCalls, 2*len(recs))
	}
	if p := exec.peak.Load(); p > 2*5 {
		t.Errorf("%d calls in flight at once, want at most 2 models × 5 records", p)
	}
	if m := r.kept[0].Record.Meta; m == nil || !slices.Equal(m.Ensemble, []string{"a", "b"}) || m.Consensus == nil {
		t.Errorf("meta %+v, want the ensemble and its decision", m)
	}
	// Every request is the zero-shot answer prompt in the model's style,
	// greedy, with generate's settings.
	wantA := prompts.AnswerPrompt(prompts.StyleCompletion, recs[0].Instruction, recs[0].Input)
	wantB := prompts.AnswerPrompt(prompts.StyleChat, recs[0].Instruction, recs[0].Input)
	for model, reqs := range exec.reqs {
		if len(reqs) != len(recs) {
			t.Errorf("model %s got %d requests, want %d", model, len(reqs), len(recs))
		}
		for _, q := range reqs {
			if q.Temperature != 0 || q.Seed != nil || q.MaxTokens != pipeline.DefaultEnsembleSampling().MaxTokens {
				t.Errorf("model %s: request %+v is not greedy with %d tokens", model, q, pipeline.DefaultEnsembleSampling().MaxTokens)
				break
			}
		}
	}
	if q := exec.reqs["a"]; !slices.ContainsFunc(q, func(q llm.Request) bool { return q.Prompt == wantA.Text && q.Messages == nil }) {
		t.Errorf("model a (completion) never got the prompt %q", wantA.Text)
	}
	if q := exec.reqs["b"]; !slices.ContainsFunc(q, func(q llm.Request) bool {
		return q.Prompt == "" && len(q.Messages) == 2 && q.Messages[1].Content == wantB.Messages[1].Content
	}) {
		t.Errorf("model b (chat) never got the messages %+v", wantB.Messages)
	}
}

func TestFilterOnlineAfterOffline(t *testing.T) {
	// The offline step picks "blue" for the record; the online step then
	// compares that pick with the models' answers.
	exec := &fakeExec{answer: func(model, _ string) string { return "Blue." }}
	r := testRun(t, testRecords(output.Record{Instruction: "Sky colour?", Output: "green"}), Options{
		Candidates: []CandidateSource{testOutputs("c1", "blue"), testOutputs("c2", "blue!")},
		Ensemble:   []llm.ModelInfo{{Name: "m", Style: llm.StyleCompletion}},
		Executor:   exec,
	})
	if got := r.outputs(); r.err != nil || !slices.Equal(got, []string{"blue"}) {
		t.Errorf("kept %q (err %v), want [blue]", got, r.err)
	}
}

func TestFilterOnlineFailure(t *testing.T) {
	exec := &fakeExec{answer: func(string, string) string { return "ok" }, fail: "number 7?"}
	var recs []output.Record
	for i := range 20 {
		recs = append(recs, output.Record{Instruction: fmt.Sprintf("Question number %d?", i), Output: "ok"})
	}
	r := testRun(t, testRecords(recs...), Options{Ensemble: []llm.ModelInfo{{Name: "m", Style: llm.StyleCompletion}}, Executor: exec, Concurrency: 3})
	if r.err == nil || !strings.Contains(r.err.Error(), "mem:8") || !strings.Contains(r.err.Error(), "boom") {
		t.Errorf("err = %v, want the failure located at mem:8", r.err)
	}
	if len(r.kept) > 7 {
		t.Errorf("kept %d records, want only records before the failure", len(r.kept))
	}
}

func TestFilterCancel(t *testing.T) {
	// The source blocks forever after one record, as stdin on a terminal
	// does: cancelling must still end Run.
	feed := make(chan output.Record, 1)
	feed <- output.Record{Instruction: "a", Output: "b"}
	ctx, cancel := context.WithCancel(context.Background())
	kept := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := Run(ctx, chanSource(feed), Options{}, func(Kept) error { close(kept); return nil }, nil)
		errc <- err
	}()
	select {
	case <-kept:
	case <-time.After(10 * time.Second):
		t.Fatal("the first record was not passed on while the source waits for the second")
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	close(feed) // lets the reader goroutine end
}

func TestFilterKeepError(t *testing.T) {
	errStop := errors.New("disk full")
	var recs []output.Record
	for i := range 3000 {
		recs = append(recs, output.Record{Instruction: fmt.Sprint(i), Output: "x"})
	}
	n := 0
	_, err := Run(context.Background(), testRecords(recs...), Options{}, func(Kept) error {
		n++
		if n == 10 {
			return errStop
		}
		return nil
	}, nil)
	if !errors.Is(err, errStop) || n != 10 {
		t.Errorf("err = %v after %d records, want %v after 10", err, n, errStop)
	}
}

func TestJoinSources(t *testing.T) {
	a := testRecords(output.Record{Output: "1"}, output.Record{Output: "2"})
	a.name = "a"
	b := testRecords(output.Record{Output: "3"})
	b.name = "b"
	r := testRun(t, JoinSources(a, testRecords(), b), Options{})
	var got []string
	for _, k := range r.kept {
		got = append(got, k.Record.Output+"@"+k.Source)
	}
	if want := []string{"1@a:1", "2@a:2", "3@b:1"}; r.err != nil || !slices.Equal(got, want) {
		t.Errorf("got %q (err %v), want %q", got, r.err, want)
	}
}

func TestRejectedJSON(t *testing.T) {
	tests := []struct {
		name string
		r    output.Rejected
		want string
	}{
		{"record", output.Rejected{Seq: 3, Reason: "heuristics/too-short", Source: "a.jsonl:4", Instruction: "Use <b> & <i>.", Output: "ok"},
			`{"reason":"heuristics/too-short","source":"a.jsonl:4","instruction":"Use <b> & <i>.","input":"","output":"ok"}`},
		{"malformed line", output.Rejected{Reason: "input/invalid", Source: "a.jsonl:2", Error: "a.jsonl:2: invalid JSON"},
			`{"reason":"input/invalid","source":"a.jsonl:2","error":"a.jsonl:2: invalid JSON"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// As the command writes it: an encoder that leaves <, > and &
			// alone, like output.Writer.
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(tt.r); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSuffix(b.String(), "\n"); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestFilterStepOrder checks that a step sees only what the steps before
// it kept: a record the heuristics drop does not enter the dedup index, and
// one dedup drops costs no ensemble call.
func TestFilterStepOrder(t *testing.T) {
	recs := []output.Record{
		{Instruction: "Describe the cat on the mat in detail.", Output: ""},         // heuristics: empty output
		{Instruction: "Describe the cat on the mat in detail.", Output: "A cat."},   // kept: the first never entered the index
		{Instruction: "Describe the cat on the mat in detail!", Output: "The cat."}, // dedup
	}
	threshold := pipeline.DefaultNoveltyThreshold
	exec := &fakeExec{answer: func(string, string) string { return "a cat" }}
	r := testRun(t, testRecords(recs...), Options{
		Heuristics: &HeuristicOptions{},
		Dedup:      &threshold,
		Ensemble:   []llm.ModelInfo{{Name: "m", Style: llm.StyleCompletion}},
		Executor:   exec,
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got, want := r.reasons(), []string{"heuristics/empty-output", "dedup/not-novel"}; !slices.Equal(got, want) {
		t.Errorf("rejected %q, want %q", got, want)
	}
	if got := r.outputs(); !slices.Equal(got, []string{"A cat."}) {
		t.Errorf("kept %q, want [A cat.]", got)
	}
	if r.stats.EnsembleCalls != 1 {
		t.Errorf("%d ensemble calls, want 1: only the surviving record is asked about", r.stats.EnsembleCalls)
	}
}

// TestFilterTwoPass runs the weighted rule in two passes over the dev
// set's tuned pool (an input file and two candidate files): Estimate, then
// Run with its weights. Every record is decided as filter.Select decides it
// with the weights of all 126 rows, which the stream (weights from the rows
// before) does not do on every row.
func TestFilterTwoPass(t *testing.T) {
	const dir = "selfinstruct-humaneval-dev/"
	files := []string{"davinci-self-instruct.jsonl", "davinci-t0-ft.jsonl", "davinci-superni-ft.jsonl"}
	open := func() (RecordSource, []CandidateSource) {
		var cands []CandidateSource
		for _, name := range files[1:] {
			cands = append(cands, CandidateSource{Name: name, Records: output.NewReader(testdata.Open(t, dir+name), name)})
		}
		return output.NewReader(testdata.Open(t, dir+files[0]), files[0]), cands
	}
	opts := filter.ConsensusOptions{Rule: filter.RuleWeighted}

	// What two passes must give, from the filter package alone.
	src, cands := open()
	var agrs []*filter.Agreement
	for {
		own, err := src.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		row := []filter.Candidate{{Text: own.Output}}
		for _, c := range cands {
			r, err := c.Records.Read()
			if err != nil {
				t.Fatal(err)
			}
			row = append(row, filter.Candidate{Text: r.Output})
		}
		agrs = append(agrs, filter.Measure(row, opts))
	}
	names := []string{output.OwnCandidate, files[1], files[2]}
	var rel filter.Reliability
	for _, a := range agrs {
		rel.Observe(names, a.Select(filter.RuleReference, filter.Votes{}, opts))
	}
	var want []string
	for i, a := range agrs {
		if d := a.Select(filter.RuleWeighted, filter.Votes{Weights: rel.Weights(names)}, opts); d.Kept {
			want = append(want, fmt.Sprintf("%d:%d", i, d.Pick))
		}
	}

	picks := func(r testResult) []string {
		var s []string
		for _, k := range r.kept {
			s = append(s, fmt.Sprintf("%d:%d", k.Seq, k.Record.Meta.Consensus.Pick))
		}
		return s
	}
	src, cands = open()
	weights, err := Estimate(context.Background(), src, Options{Candidates: cands, Consensus: opts})
	if err != nil {
		t.Fatal(err)
	}
	src, cands = open()
	two := testRun(t, src, Options{Candidates: cands, Consensus: opts, Weights: weights, Meta: true})
	if two.err != nil {
		t.Fatal(two.err)
	}
	if got := picks(two); !slices.Equal(got, want) {
		t.Errorf("two passes kept %d rows, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	if two.stats.Reliability == nil || two.stats.Reliability.Rows != len(agrs) {
		t.Errorf("reliability %+v, want this run's %d decisions", two.stats.Reliability, len(agrs))
	}
	src, cands = open()
	stream := testRun(t, src, Options{Candidates: cands, Consensus: opts, Meta: true})
	if stream.err != nil || slices.Equal(picks(stream), want) {
		t.Errorf("the stream decides as two passes do (err %v): the test does not tell them apart", stream.err)
	}

	if r := testRun(t, testRecords(), Options{Weights: weights}); r.err == nil || !strings.Contains(r.err.Error(), "member weights need the weighted or judge rule") {
		t.Errorf("Run with weights and the reference rule: %v", r.err)
	}
}
