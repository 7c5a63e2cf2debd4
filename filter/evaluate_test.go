package filter

import (
	"bufio"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/internal/testdata"
)

// devEnsembles are the four pools of testdata/selfinstruct-humaneval-dev's
// README, candidate 0 (the example's own output) first.
var devEnsembles = map[string][]string{
	"instruct": {"text-davinci-003", "text-davinci-002", "text-davinci-001"},
	"tuned":    {"davinci-self-instruct", "davinci-t0-ft", "davinci-superni-ft"},
	"base":     {"davinci", "davinci-t0-ft", "davinci-superni-ft"},
	"all":      {"davinci", "davinci-self-instruct", "davinci-t0-ft", "davinci-superni-ft", "davinci-self-instruct-and-superni-ft", "text-davinci-001", "text-davinci-002", "text-davinci-003"},
}

// readDevField returns one string field of every line of a dev-set file.
func readDevField(t testing.TB, name, field string) []string {
	t.Helper()
	f, err := os.Open(testdata.Path(t, "selfinstruct-humaneval-dev/"+name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for line := 1; sc.Scan(); line++ {
		var row map[string]*string
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil || row[field] == nil {
			t.Fatalf("%s.jsonl:%d: no string field %q (%v)", name, line, field, err)
		}
		out = append(out, *row[field])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readDevOutputs returns the dev set's targets and, for each member, its
// outputs, aligned row by row.
func readDevOutputs(t testing.TB, members []string) (targets []string, outs [][]string) {
	t.Helper()
	targets = readDevField(t, "targets", "target")
	outs = make([][]string, len(members))
	for i, m := range members {
		outs[i] = readDevField(t, m, "output")
		if len(outs[i]) != len(targets) {
			t.Fatalf("%s has %d rows, targets %d", m, len(outs[i]), len(targets))
		}
	}
	return targets, outs
}

// devReport evaluates the rules on rows [lo, hi) of the dev set for one
// ensemble.
func devReport(t testing.TB, members []string, lo, hi int, opts ConsensusOptions) SelectionReport {
	t.Helper()
	targets, outs := readDevOutputs(t, members)
	e := NewSelectionEval(members, opts)
	for r := lo; r < min(hi, len(targets)); r++ {
		cands := make([]Candidate, len(members))
		for i := range members {
			cands[i] = Candidate{Text: outs[i][r]}
		}
		e.Add(cands, targets[r], nil)
	}
	return e.Report()
}

func ruleScore(rep SelectionReport, rule string) RuleScore {
	for _, r := range rep.Rules {
		if r.Rule == rule {
			return r
		}
	}
	return RuleScore{}
}

// TestSelectionEvalDev pins how the rules pick on the dev set's four
// ensembles (all 126 rows, nothing dropped, repetitive outputs rejected as
// generate's default instance rules do). The weighted rule must beat the
// member mean everywhere. It reaches the best single member (within 0.005),
// in two passes and as a stream, on "instruct", "base" and "all", but not
// on "tuned": docs/consensus.md explains why; the pinned numbers make any
// change to that visible.
func TestSelectionEvalDev(t *testing.T) {
	const tol = 5e-4
	tests := []struct {
		name                                  string
		best, mean, reference, weighted, strm float64
		reachesBest                           bool
	}{
		{"instruct", 0.3360, 0.3169, 0.3398, 0.3430, 0.3420, true},
		{"tuned", 0.2832, 0.2304, 0.2709, 0.2663, 0.2607, false},
		{"base", 0.2503, 0.1441, 0.1804, 0.2533, 0.2536, true},
		{"all", 0.3360, 0.2418, 0.3075, 0.3371, 0.3358, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := devReport(t, devEnsembles[tt.name], 0, 126, ConsensusOptions{RejectRepetitive: true})
			ref, w, st := ruleScore(rep, "reference"), ruleScore(rep, "weighted"), ruleScore(rep, "weighted-stream")
			for _, c := range []struct {
				what      string
				got, want float64
			}{
				{"best member", rep.BestMember, tt.best}, {"member mean", rep.MemberMean, tt.mean},
				{"reference", ref.Score, tt.reference}, {"weighted", w.Score, tt.weighted}, {"weighted-stream", st.Score, tt.strm},
			} {
				if math.Abs(c.got-c.want) > tol {
					t.Errorf("%s = %.4f, want %.4f", c.what, c.got, c.want)
				}
			}
			if w.Score <= rep.MemberMean || st.Score <= rep.MemberMean {
				t.Errorf("weighted %.4f / stream %.4f not above the member mean %.4f", w.Score, st.Score, rep.MemberMean)
			}
			if tt.reachesBest && min(w.Score, st.Score) < rep.BestMember-0.005 {
				t.Errorf("weighted %.4f / stream %.4f more than 0.005 below the best member %.4f", w.Score, st.Score, rep.BestMember)
			}
			if rep.Oracle < w.Score || rep.Rows != 126 || w.Kept+w.Dropped != 126 {
				t.Errorf("oracle %.4f, rows %d, kept+dropped %d", rep.Oracle, rep.Rows, w.Kept+w.Dropped)
			}
		})
	}
}

// TestSelectionEvalSimulatedJudge runs the judge rule on the dev set with
// a simulated judge: each usable candidate graded 1–10 from its own target
// score plus Gaussian noise (σ = 0.1 in Rouge-L units; its grades
// correlate about 0.95 with the target scores), from fixed seeds. Such a
// judge must put the judge rule at or above the best member on every pool,
// where the weighted rule is not (docs/consensus.md has the table for
// noisier judges). It checks that the grades, the support floor and the
// tie-breaks combine as documented on real outputs, not how good any
// model is as a judge.
func TestSelectionEvalSimulatedJudge(t *testing.T) {
	for _, name := range []string{"instruct", "tuned", "base", "all"} {
		members := devEnsembles[name]
		targets, outs := readDevOutputs(t, members)
		for seed := range uint64(2) {
			rng := rand.New(rand.NewPCG(seed, 1))
			e := NewSelectionEval(members, ConsensusOptions{RejectRepetitive: true})
			for r := range targets {
				cands := make([]Candidate, len(members))
				grades := make([]float64, len(members))
				want := TokenizeStem(strings.TrimSpace(targets[r]))
				for i := range members {
					cands[i] = Candidate{Text: outs[i][r]}
					s := RougeL(TokenizeStem(strings.TrimSpace(outs[i][r])), want).F
					grades[i] = math.Min(10, math.Max(1, math.Round(1+9*(s+0.1*rng.NormFloat64()))))
				}
				e.Add(cands, targets[r], grades)
			}
			rep := e.Report()
			j, w := ruleScore(rep, "judge"), ruleScore(rep, "weighted")
			if j.Score < rep.BestMember || j.Score <= w.Score || j.Score > rep.Oracle {
				t.Errorf("%s seed %d: judge %.4f, weighted %.4f, best member %.4f, oracle %.4f", name, seed, j.Score, w.Score, rep.BestMember, rep.Oracle)
			}
			t.Logf("%s seed %d: judge %+.4f of the best member (weighted %+.4f)", name, seed, j.Score-rep.BestMember, w.Score-rep.BestMember)
		}
	}
}
