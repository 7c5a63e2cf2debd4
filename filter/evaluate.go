package filter

import "strings"

// SelectionEval measures how well the selection rules pick, on examples
// whose right answer is known: for every rule, the mean target Rouge-L
// (F with stemming, rouge_score semantics) of the candidate the rule ranks
// first on every example, with nothing dropped; the same for each member
// alone, their mean and the per-example oracle; and how many examples the
// rule's agreement floor would drop, with the quality of the kept and the
// dropped ones.
//
// It is fed one example at a time (Add) and evaluates when asked (Report).
// RuleWeighted is evaluated twice: as a stream, each example decided with
// the reliabilities estimated from the examples before it (what generate
// does), and in two passes, every example decided with the estimate from
// all of them (what filter can do on files). It keeps a few numbers per
// candidate and example, not the texts. Build one with NewSelectionEval; it
// is not safe for concurrent use.
type SelectionEval struct {
	names  []string
	opts   ConsensusOptions
	rows   []evalRow
	judged bool
	stream Reliability
	// streamDecisions are the streamed weighted decisions, made in Add.
	streamDecisions []Decision
}

// evalRow is what SelectionEval keeps of one example.
type evalRow struct {
	a      *Agreement
	target []float64 // each candidate's target Rouge-L F
	judge  []float64
}

// NewSelectionEval returns an evaluation of the rules with opts (opts.Rule
// is ignored: every rule is evaluated) for candidates produced by the
// members names, in that order.
func NewSelectionEval(names []string, opts ConsensusOptions) *SelectionEval {
	return &SelectionEval{names: names, opts: opts}
}

// Add records one example: its candidates, aligned with the member names,
// the right answer, and the judge's scores (nil when no judge ran; see
// Votes.Judge). A failed candidate scores 0 against the target; so does an
// example with no usable candidate under every rule.
func (e *SelectionEval) Add(cands []Candidate, target string, judge []float64) {
	if len(cands) != len(e.names) {
		panic("filter: SelectionEval.Add with a candidate count unlike the member count")
	}
	a := Measure(cands, e.opts)
	t := TokenizeStem(strings.TrimSpace(target))
	scores := make([]float64, len(cands))
	for i, c := range cands {
		if c.Status != CandidateFailed {
			scores[i] = RougeL(TokenizeStem(strings.TrimSpace(c.Text)), t).F
		}
	}
	if judge != nil {
		e.judged = true
	}
	// The stream decides now, with what it has seen so far.
	d := a.Select(RuleWeighted, Votes{Weights: e.stream.Weights(e.names)}, e.opts)
	e.stream.Observe(e.names, d)
	e.streamDecisions = append(e.streamDecisions, d)
	// Keep the measurements, not the texts.
	a.Texts = make([]string, len(cands))
	e.rows = append(e.rows, evalRow{a: a, target: scores, judge: judge})
}

// SelectionReport is the result of a SelectionEval. It encodes as JSON.
type SelectionReport struct {
	// Rows is the number of examples.
	Rows int `json:"rows"`
	// Members are each member's mean target score.
	Members []MemberScore `json:"members"`
	// MemberMean is the mean of the members' scores; BestMember the
	// highest; Oracle the mean of each example's best candidate.
	MemberMean float64 `json:"member_mean"`
	BestMember float64 `json:"best_member"`
	Oracle     float64 `json:"oracle"`
	// Rules are the rules' results: reference, weighted (two passes),
	// weighted-stream, and judge when judge scores were given.
	Rules []RuleScore `json:"rules"`
	// Reliability is the two-pass reliability estimate, with the wins of
	// the two-pass weighted rule.
	Reliability ReliabilitySummary `json:"reliability"`
}

// MemberScore is one member's mean target score.
type MemberScore struct {
	Name  string  `json:"name"`
	Score float64 `json:"score"`
}

// RuleScore is one rule's result in a SelectionReport.
type RuleScore struct {
	// Rule names the rule: "reference", "weighted", "weighted-stream" or
	// "judge".
	Rule string `json:"rule"`
	// Score is the mean target score of the rule's first-ranked candidate
	// over all examples, nothing dropped.
	Score float64 `json:"score"`
	// Kept and Dropped count the examples the agreement floor keeps and
	// drops; KeptScore and DroppedScore are the mean target scores of the
	// picks on each (0 when there are none).
	Kept         int     `json:"kept"`
	Dropped      int     `json:"dropped"`
	KeptScore    float64 `json:"kept_score"`
	DroppedScore float64 `json:"dropped_score"`
}

// DropRate is the share of examples dropped.
func (r RuleScore) DropRate() float64 {
	if n := r.Kept + r.Dropped; n > 0 {
		return float64(r.Dropped) / float64(n)
	}
	return 0
}

// Report evaluates every rule on the examples added so far.
func (e *SelectionEval) Report() SelectionReport {
	k := len(e.names)
	n := len(e.rows)
	rep := SelectionReport{Rows: n, Members: make([]MemberScore, k)}
	for i, name := range e.names {
		rep.Members[i].Name = name
	}
	for _, r := range e.rows {
		best := 0.0
		for i, s := range r.target {
			rep.Members[i].Score += s
			best = max(best, s)
		}
		rep.Oracle += best
	}
	if n > 0 {
		rep.Oracle /= float64(n)
	}
	for i := range rep.Members {
		if n > 0 {
			rep.Members[i].Score /= float64(n)
		}
		rep.MemberMean += rep.Members[i].Score / float64(max(k, 1))
		rep.BestMember = max(rep.BestMember, rep.Members[i].Score)
	}

	// Two passes: estimate the reliabilities on every example first.
	var est Reliability
	for _, r := range e.rows {
		est.Observe(e.names, r.a.Select(RuleReference, Votes{}, e.opts))
	}
	weights := est.Weights(e.names)

	var twoPass Reliability
	decide := map[string]func(int, evalRow) Decision{
		"reference": func(_ int, r evalRow) Decision { return r.a.Select(RuleReference, Votes{}, e.opts) },
		"weighted": func(_ int, r evalRow) Decision {
			d := r.a.Select(RuleWeighted, Votes{Weights: weights}, e.opts)
			twoPass.Observe(e.names, d)
			return d
		},
		"weighted-stream": func(i int, _ evalRow) Decision { return e.streamDecisions[i] },
		"judge": func(_ int, r evalRow) Decision {
			return r.a.Select(RuleJudge, Votes{Weights: weights, Judge: r.judge}, e.opts)
		},
	}
	order := []string{"reference", "weighted", "weighted-stream"}
	if e.judged {
		order = append(order, "judge")
	}
	for _, name := range order {
		rs := RuleScore{Rule: name}
		for i, r := range e.rows {
			d := decide[name](i, r)
			s := 0.0
			if d.Best >= 0 {
				s = r.target[d.Best]
			}
			rs.Score += s
			if d.Kept {
				rs.Kept++
				rs.KeptScore += s
			} else {
				rs.Dropped++
				rs.DroppedScore += s
			}
		}
		if n > 0 {
			rs.Score /= float64(n)
		}
		if rs.Kept > 0 {
			rs.KeptScore /= float64(rs.Kept)
		}
		if rs.Dropped > 0 {
			rs.DroppedScore /= float64(rs.Dropped)
		}
		rep.Rules = append(rep.Rules, rs)
	}
	// The weights depend on statuses and agreement only, not on picks, so
	// this summary's weights are the ones the two-pass rule used.
	rep.Reliability = twoPass.Summary()
	return rep
}
