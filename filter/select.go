package filter

import "fmt"

// Rule names a consensus selection rule.
type Rule string

const (
	// RuleReference is the Ensemble-Instruct rule (exact-match groups,
	// then the highest summed agreement, dropped below the agreement
	// floor). It is the default, and for three usable candidates it is
	// the reference implementation's rule bit for bit.
	RuleReference Rule = "reference"
	// RuleWeighted is reliability-weighted rank voting: every usable
	// member ranks all usable candidates by their agreement with its own
	// output (itself first), and a candidate collects, from each member,
	// the member's reliability times the number of candidates that member
	// ranks below it. The reliabilities come from the run's own agreement
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
// rank votes: usable member j ranks the usable candidates by their
// agreement with its own output (its own first, at agreement 1) and gives
// each candidate w[j] times the number of candidates it ranks lower (a
// tie counts one half). This is the Borda count with every member a voter
// weighted by its reliability; ranks, unlike summed scores, do not let a
// pair of near-identical outputs outvote everyone else by their size.
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
			sij := a.Pair(i, j)
			points := 0.0
			for l := range k {
				if l == i || !a.Usable(l) {
					continue
				}
				switch slj := a.Pair(l, j); {
				case sij > slj:
					points++
				case sij == slj:
					points += 0.5
				}
			}
			score[i] += w[j] * points
		}
	}
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
