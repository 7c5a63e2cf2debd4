package filter

import (
	"cmp"
	"fmt"
)

// Rule names a consensus selection rule.
type Rule string

const (
	// RuleReference is the Ensemble-Instruct rule (exact-match groups,
	// then the highest summed agreement, dropped below the agreement
	// floor). It is the default, and for three usable candidates it is
	// the reference implementation's rule bit for bit.
	RuleReference Rule = "reference"
	// RuleWeighted is reliability-weighted rank voting: every usable
	// member ranks all usable candidates by how well each would score as
	// a prediction of its own output, by recall-weighted F2 (itself
	// first), and a candidate collects, from each member, the member's
	// reliability times the number of candidates that member ranks below
	// it. The reliabilities come from the run's own agreement
	// statistics (Reliability.Weights); no ground truth is used.
	RuleWeighted Rule = "weighted"
	// RuleJudge picks, among the candidates whose support clears the
	// agreement floor, the one a judge model scored highest (ties: the
	// weighted rule's order). Without judge scores it is RuleWeighted.
	RuleJudge Rule = "judge"
)

// Rules returns the selection rules, the default first.
func Rules() []Rule { return []Rule{RuleReference, RuleWeighted, RuleJudge} }

// ParseRule returns the Rule named s ("" means RuleReference), or an error
// listing the choices.
func ParseRule(s string) (Rule, error) {
	if s == "" {
		return RuleReference, nil
	}
	for _, r := range Rules() {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown selection rule %q (want reference, weighted or judge)", s)
}

// Votes are the per-example inputs of the rules beyond the candidates
// themselves. The zero value is fine for every rule: uniform weights and
// no judge.
type Votes struct {
	// Weights are the members' reliabilities, aligned with the
	// candidates (see Reliability.Weights). Nil, or all usable members at
	// zero, means equal weights. RuleReference ignores them.
	Weights []float64
	// Judge holds a judge's scores aligned with the candidates (0 for a
	// candidate that was not judged); nil when no judge ran. Only
	// RuleJudge uses them.
	Judge []float64
}

// Select applies rule to the measured candidates and returns the
// decision; rule "" means RuleReference. It is cheap (no Rouge scoring)
// and safe for concurrent use.
//
// RuleWeighted ranks by reliability-weighted rank votes (see
// RuleWeighted) and keeps its best candidate when that candidate's support
// — its reliability-weighted mean agreement with the other usable
// candidates — is above the agreement floor. RuleJudge keeps the
// best-judged candidate among those whose support is above the floor.
// Both drop with ReasonTooFew when fewer than two candidates are usable
// and with ReasonLowAgreement when no candidate qualifies.
func (a *Agreement) Select(rule Rule, v Votes, opts ConsensusOptions) Decision {
	k := len(a.Status)
	if rule == "" {
		rule = RuleReference
	}
	d := Decision{
		Rule: rule, Pick: -1, Best: -1,
		Status: a.Status, Pairwise: a.Pairwise,
		Scores: make([]float64, k), MinPair: 1,
	}
	usable := 0
	for i := range k {
		if !a.Usable(i) {
			continue
		}
		usable++
		for j := i + 1; j < k; j++ {
			if a.Usable(j) && a.Pair(i, j) < d.MinPair {
				d.MinPair = a.Pair(i, j)
			}
		}
	}
	if rule == RuleJudge && v.Judge != nil {
		d.Judge = v.Judge
	}
	if usable < 2 {
		// Nothing can agree. The lone usable candidate, if any, is still
		// the best one when nothing may be dropped.
		d.Best = a.argmax(d.Scores, nil, nil)
		d.Reason = ReasonTooFew
		if a.compat {
			d.Reason = ReasonLowAgreement
		}
		return d
	}
	if rule == RuleReference {
		a.selectReference(&d, opts)
		return d
	}
	d.Weights = a.effectiveWeights(v.Weights)
	a.rankVotes(d.Scores, d.Weights)
	d.Best = a.argmax(d.Scores, nil, nil)
	floor := opts.minAgreement()
	supported := func(i int) bool { return a.support(i, d.Weights) > floor }
	if rule == RuleJudge && v.Judge != nil {
		if pick := a.argmax(v.Judge, d.Scores, supported); pick >= 0 {
			d.Best = pick
			d.keep(a, pick, ReasonJudged)
			return d
		}
		d.Reason = ReasonLowAgreement
		return d
	}
	if !supported(d.Best) {
		d.Reason = ReasonLowAgreement
		return d
	}
	d.keep(a, d.Best, ReasonAgreement)
	return d
}

// effectiveWeights returns w restricted to the usable candidates (0
// elsewhere), or equal weights when w is nil, too short or zero on every
// usable candidate. Negative and NaN weights count as 0.
func (a *Agreement) effectiveWeights(w []float64) []float64 {
	k := len(a.Status)
	out := make([]float64, k)
	total := 0.0
	for i := range k {
		if a.Usable(i) && i < len(w) && w[i] > 0 {
			out[i] = w[i]
			total += w[i]
		}
	}
	if total > 0 {
		return out
	}
	for i := range k {
		if a.Usable(i) {
			out[i] = 1
		}
	}
	return out
}

// rankVotes adds to score each usable candidate's reliability-weighted
// rank votes: usable member j ranks the usable candidates by how well each
// would score as a prediction of its own output (its own first) and gives
// each candidate w[j] times the number of candidates it ranks lower (a tie
// counts one half). This is the Borda count with every member a voter
// weighted by its reliability; ranks, unlike summed scores, do not let a
// pair of near-identical outputs outvote everyone else by their size.
//
// A voter's score for a candidate is the F_β measure of their overlap
// with β = 2 (rankRecallWeight = β²): recall — how much of the voter's
// output the candidate contains — weighs four times precision. Between two
// candidates that agree with a voter about as well, the one that covers
// more of what the voter said ranks higher, so a complete answer is
// preferred to a fragment of it. F2 is the usual recall-weighted F
// measure; docs/consensus.md gives the picks for β from 1 to ∞.
func (a *Agreement) rankVotes(score, w []float64) {
	k := len(a.Status)
	for j := range k {
		if !a.Usable(j) || w[j] == 0 {
			continue
		}
		for i := range k {
			if !a.Usable(i) {
				continue
			}
			points := 0.0
			for l := range k {
				if l == i || !a.Usable(l) {
					continue
				}
				switch c := a.compareRecallWeighted(i, l, j); {
				case c > 0:
					points++
				case c == 0:
					points += 0.5
				}
			}
			score[i] += w[j] * points
		}
	}
}

// rankRecallWeight is β² of the F_β measure rankVotes ranks by.
const rankRecallWeight = 4

// compareRecallWeighted compares candidates i and l as predictions of
// candidate j's output by F_β = (1+β²)·c / (len(pred) + β²·len(j)), c the
// overlap with j (Common; a candidate overlaps itself entirely). It
// returns +1 when i scores higher, -1 when l does, 0 on a tie, exactly: the
// fractions are compared by cross-multiplying integers.
//
// An Agreement built by hand without Lengths and Common compares the
// Pairwise F scores instead.
func (a *Agreement) compareRecallWeighted(i, l, j int) int {
	if len(a.Lengths) != len(a.Status) || len(a.Common) != len(a.Pairwise) {
		return cmp.Compare(a.Pair(i, j), a.Pair(l, j))
	}
	ref := int64(rankRecallWeight) * int64(a.Lengths[j])
	x := int64(a.common(i, j)) * (int64(a.Lengths[l]) + ref)
	y := int64(a.common(l, j)) * (int64(a.Lengths[i]) + ref)
	return cmp.Compare(x, y)
}

// common returns the overlap of candidates i and j (Common), a candidate's
// own length when i == j.
func (a *Agreement) common(i, j int) int {
	if i == j {
		return a.Lengths[i]
	}
	return a.Common[PairIndex(len(a.Status), i, j)]
}

// support returns candidate i's reliability-weighted mean agreement with
// the other usable candidates.
func (a *Agreement) support(i int, w []float64) float64 {
	num, den, plain, n := 0.0, 0.0, 0.0, 0
	for j := range a.Status {
		if j != i && a.Usable(j) {
			num += w[j] * a.Pair(i, j)
			den += w[j]
			plain += a.Pair(i, j)
			n++
		}
	}
	switch {
	case den > 0:
		return num / den
	case n > 0:
		// Every other usable member has no weight: fall back to the plain
		// mean rather than calling the candidate unsupported.
		return plain / float64(n)
	}
	return 0
}
