package filter

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Metric names the agreement score the consensus rules use. Both are
// computed on normalized candidates, with stemming, as rouge_score does.
type Metric string

const (
	// MetricRougeL is Rouge-L F with stemming: the reference's choice.
	MetricRougeL Metric = "rougeL"
	// MetricRouge1 is Rouge-1 (unigram overlap) F with stemming.
	MetricRouge1 Metric = "rouge1"
)

// DefaultMinAgreement is the reference's threshold: an example is kept
// only if every pair of candidates scores strictly more than this.
const DefaultMinAgreement = 0.01

// ConsensusOptions parameterize the consensus rules. The zero value is the
// reference's rule: Rouge-L with stemming and a threshold of 0.01.
type ConsensusOptions struct {
	// Rule is the selection rule; "" means RuleReference.
	Rule Rule
	// Metric is the pairwise agreement score; "" means MetricRougeL.
	Metric Metric
	// MinAgreement is the agreement floor (strict >): for RuleReference
	// the lowest pairwise score of the usable candidates, for RuleWeighted
	// and RuleJudge a candidate's support (see Agreement.Select). Nil means
	// DefaultMinAgreement; point at 0 to keep any pair that shares a token.
	MinAgreement *float64
	// RejectRepetitive leaves outputs caught in a loop out of the vote,
	// with the rule CheckInstance applies unless
	// InstanceRules.AllowRepetition. Off by default, as in the reference
	// (whose sample keeps such an output).
	RejectRepetitive bool
}

func (o ConsensusOptions) minAgreement() float64 {
	if o.MinAgreement == nil {
		return DefaultMinAgreement
	}
	return *o.MinAgreement
}

// CandidateStatus says whether a candidate takes part in the vote.
type CandidateStatus uint8

const (
	// CandidateOK is a usable output. It is the zero value: Measure
	// screens such candidates and may turn them into CandidateEmpty or
	// CandidateRejected.
	CandidateOK CandidateStatus = iota
	// CandidateFailed is a model call that failed for good: there is no
	// output, and the candidate is left out of the vote.
	CandidateFailed
	// CandidateEmpty is an output with nothing left after normalization.
	CandidateEmpty
	// CandidateRejected is an output the heuristics reject: caught in a
	// loop, or marked so by the caller for its own reasons.
	CandidateRejected
)

var candidateStatusNames = [...]string{"ok", "failed", "empty", "rejected"}

// String returns "ok", "failed", "empty" or "rejected".
func (s CandidateStatus) String() string {
	if int(s) < len(candidateStatusNames) {
		return candidateStatusNames[s]
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText encodes the status as its name.
func (s CandidateStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a status name.
func (s *CandidateStatus) UnmarshalText(b []byte) error {
	for i, n := range candidateStatusNames {
		if string(b) == n {
			*s = CandidateStatus(i)
			return nil
		}
	}
	return fmt.Errorf("unknown candidate status %q (want ok, failed, empty or rejected)", b)
}

// Candidate is one output offered to the vote. Text is ignored when Status
// is CandidateFailed; a caller marks an output it has rejected itself as
// CandidateRejected.
type Candidate struct {
	Text   string
	Status CandidateStatus
}

// Decision is the outcome of a consensus rule for one example. Its slices
// are shared with the Agreement it came from: treat them as read-only.
type Decision struct {
	// Rule is the rule that decided.
	Rule Rule `json:"rule,omitempty"`
	// Kept reports whether the example is kept.
	Kept bool `json:"kept"`
	// Pick is the index of the chosen candidate, or -1 when dropped.
	Pick int `json:"pick"`
	// Best is the candidate the rule ranks first whether or not the
	// example is kept (-1 when no candidate is usable): the pick when
	// nothing may be dropped.
	Best int `json:"best"`
	// Output is the chosen candidate with surrounding white space
	// trimmed; empty when dropped, never empty when kept.
	Output string `json:"output,omitempty"`
	// Reason is ReasonExactMatch, ReasonAgreement or ReasonJudged when
	// kept, ReasonLowAgreement or ReasonTooFew when dropped.
	Reason Reason `json:"reason"`
	// Status holds each candidate's status after screening.
	Status []CandidateStatus `json:"status,omitempty"`
	// Pairwise holds the agreement of every pair of candidates in the
	// order (0,1), (0,2), …, (0,k-1), (1,2), …; see PairIndex. A pair with
	// an unusable candidate scores 0.
	Pairwise []float64 `json:"pairwise"`
	// Scores holds each candidate's score under Rule: the summed agreement
	// with the other usable candidates (RuleReference) or the
	// reliability-weighted rank votes (RuleWeighted, RuleJudge); 0 for an
	// unusable candidate.
	Scores []float64 `json:"scores"`
	// MinPair is the lowest pairwise agreement among usable candidates (1
	// with fewer than two).
	MinPair float64 `json:"min_pair"`
	// Weights are the member reliabilities RuleWeighted and RuleJudge
	// used, aligned with the candidates; nil for RuleReference.
	Weights []float64 `json:"weights,omitempty"`
	// Judge holds the judge's scores aligned with the candidates (0 for a
	// candidate that was not judged); nil when no judge ran.
	Judge []float64 `json:"judge"`
}

// PairIndex returns the position of the pair (i, j), i != j, in
// Decision.Pairwise for k candidates.
func PairIndex(k, i, j int) int {
	if i > j {
		i, j = j, i
	}
	// Pairs before row i: (k-1) + (k-2) + … + (k-i).
	return i*(2*k-i-1)/2 + (j - i - 1)
}

// Agreement is the measured, rule-independent part of a consensus decision
// for one example: each candidate's status after screening, its trimmed
// text, which candidates are equal after normalization, and every pairwise
// score. Measuring is the costly step (a Rouge score per pair); applying a
// rule to an Agreement (Select) is cheap, so a stream can measure in
// parallel and select in input order. An Agreement is immutable once
// measured and safe for concurrent use.
type Agreement struct {
	// Status is each candidate's status after screening.
	Status []CandidateStatus
	// Texts are the candidates' texts with surrounding white space
	// trimmed ("" for a failed candidate).
	Texts []string
	// Group[i] is the index of the first usable candidate equal to
	// candidate i after normalization (i itself when it is the first), or
	// -1 when candidate i is unusable.
	Group []int
	// Pairwise is as in Decision.
	Pairwise []float64
	// Lengths are the usable candidates' token counts after
	// normalization and stemming (0 for an unusable candidate), and
	// Common the token overlap of every pair, in Pairwise's order: the
	// length of the longest common subsequence for MetricRougeL, the
	// clipped unigram overlap for MetricRouge1. Pairwise[p] is the F
	// score of Common[p] and the two lengths; RuleWeighted ranks with
	// the same numbers weighted towards recall (see rankVotes).
	Lengths []int
	Common  []int

	// compat keeps the reference's treatment of empty outputs (see
	// Consensus).
	compat bool
	// metric is the metric the pairs were scored with.
	metric Metric
}

// Usable reports whether candidate i takes part in the vote.
func (a *Agreement) Usable(i int) bool { return a.Status[i] == CandidateOK }

// Pair returns the agreement of candidates i and j (1 when i == j).
func (a *Agreement) Pair(i, j int) float64 {
	if i == j {
		return 1
	}
	return a.Pairwise[PairIndex(len(a.Status), i, j)]
}

// Measure screens the candidates and scores every usable pair with the
// metric of opts. A candidate takes part in the vote when its status is
// CandidateOK, its text is not empty after normalization (else it becomes
// CandidateEmpty) and, with opts.RejectRepetitive, it is not caught in a
// loop (else CandidateRejected). Measure is safe for concurrent use.
func Measure(cands []Candidate, opts ConsensusOptions) *Agreement {
	return measure(cands, opts, false)
}

// measure is Measure; with compat, empty outputs stay usable, as in the
// reference.
func measure(cands []Candidate, opts ConsensusOptions, compat bool) *Agreement {
	k := len(cands)
	a := &Agreement{
		compat:   compat,
		metric:   opts.Metric,
		Status:   make([]CandidateStatus, k),
		Texts:    make([]string, k),
		Group:    make([]int, k),
		Pairwise: make([]float64, k*(k-1)/2),
		Lengths:  make([]int, k),
		Common:   make([]int, k*(k-1)/2),
	}
	norms := make([]string, k)
	tokens := make([][]string, k)
	for i, c := range cands {
		a.Status[i] = c.Status
		a.Group[i] = -1
		if c.Status == CandidateFailed {
			continue
		}
		a.Texts[i] = strings.TrimSpace(c.Text)
		if c.Status != CandidateOK {
			continue
		}
		norms[i] = NormalizeAnswer(a.Texts[i])
		switch {
		case norms[i] == "" && !compat:
			a.Status[i] = CandidateEmpty
			continue
		case opts.RejectRepetitive && instanceRepetitive(a.Texts[i]):
			a.Status[i] = CandidateRejected
			continue
		}
		tokens[i] = TokenizeStem(norms[i])
		a.Lengths[i] = len(tokens[i])
		a.Group[i] = i
		for j := range i {
			if a.Status[j] == CandidateOK && norms[j] == norms[i] {
				a.Group[i] = a.Group[j]
				break
			}
		}
	}
	for i := range k {
		for j := i + 1; j < k; j++ {
			if a.Status[i] != CandidateOK || a.Status[j] != CandidateOK {
				continue
			}
			// An empty output (compat keeps them in the vote) overlaps
			// nothing and scores 0.
			common := overlap(opts.Metric, tokens[i], tokens[j])
			p := PairIndex(k, i, j)
			a.Common[p] = common
			a.Pairwise[p] = scoreFromOverlap(common, len(tokens[i]), len(tokens[j])).F
		}
	}
	return a
}

// overlap is the token overlap metric scores x and y by: the longest
// common subsequence for MetricRougeL, the clipped unigram overlap for
// MetricRouge1.
func overlap(metric Metric, x, y []string) int {
	if metric == MetricRouge1 {
		return rougeUnigramOverlap(x, y)
	}
	return LCS(x, y)
}

// AgreementWith scores every usable candidate against text as Measure
// scores a pair: F of the normalized, stemmed texts by the metric the
// candidates were measured with. Unusable candidates score 0. It reports
// false, with every score 0, when text has no token to agree with (empty
// after normalization, or nothing Rouge tokenizes). The judge's answer
// mode grades candidates with it.
func (a *Agreement) AgreementWith(text string) ([]float64, bool) {
	out := make([]float64, len(a.Status))
	ref := TokenizeStem(NormalizeAnswer(text))
	if len(ref) == 0 {
		return out, false
	}
	for i := range a.Status {
		if !a.Usable(i) {
			continue
		}
		tokens := TokenizeStem(NormalizeAnswer(a.Texts[i]))
		out[i] = scoreFromOverlap(overlap(a.metric, tokens, ref), len(tokens), len(ref)).F
	}
	return out, true
}

// Consensus applies the reference implementation's rule, exactly,
// degenerate cases included, to candidate outputs for one example, all of
// them answered: RuleReference, whatever opts.Rule says, except that empty
// outputs take part like any other. Two empty outputs are then an agreeing
// group and may be kept with Output "" (the reference's sample keeps one
// such row), and an empty output disagrees with everything, so any empty
// output among three drops the example. New code should call Decide,
// which leaves empty outputs out of the vote.
//
// By convention candidate 0 is the example's own output and the rest are
// the ensemble models' outputs, in a fixed order: ties go to the earlier
// candidate. With fewer than two candidates the example is dropped with
// ReasonLowAgreement. Consensus is safe for concurrent use.
func Consensus(candidates []string, opts ConsensusOptions) Decision {
	cands := make([]Candidate, len(candidates))
	for i, c := range candidates {
		cands[i] = Candidate{Text: c}
	}
	return measure(cands, opts, true).Select(RuleReference, Votes{}, opts)
}

// Decide measures the candidates and applies opts.Rule with votes (see
// Agreement.Select). Safe for concurrent use.
func Decide(cands []Candidate, votes Votes, opts ConsensusOptions) Decision {
	return Measure(cands, opts).Select(opts.Rule, votes, opts)
}

// selectReference is the Ensemble-Instruct rule over the usable
// candidates:
//
//  1. If two or more usable candidates are equal after normalization
//     (lowercase, ASCII punctuation deleted, white space collapsed: see
//     NormalizeAnswer), the earliest member of the largest group is kept
//     (ties between groups: the group holding the earliest candidate).
//  2. Otherwise each candidate's score is the sum of its pairwise scores
//     with the other usable candidates, and the highest wins (ties: the
//     earlier candidate).
//  3. In case 2 the example is kept only if the lowest pairwise score is
//     above the threshold.
//
// Unusable candidates (failed, empty, rejected) are left out of every
// step; with fewer than two usable candidates nothing can agree and the
// example is dropped with ReasonTooFew. For k = 3 usable candidates this
// is exactly the reference implementation's rule.
func (a *Agreement) selectReference(d *Decision, opts ConsensusOptions) {
	k := len(a.Status)
	for i := range k {
		for j := range k {
			if j != i && a.Usable(i) && a.Usable(j) {
				d.Scores[i] += a.Pair(i, j)
			}
		}
	}
	if pick := a.largestGroup(); pick >= 0 {
		d.Best = pick
		d.keep(a, pick, ReasonExactMatch)
		return
	}
	d.Best = a.argmax(d.Scores, nil, nil)
	switch {
	case d.MinPair <= opts.minAgreement():
		d.Reason = ReasonLowAgreement
	case a.compat && a.Texts[d.Best] == "":
		// Only in compat mode: elsewhere an empty output is unusable.
		d.Reason = ReasonEmptyPick
	default:
		d.keep(a, d.Best, ReasonAgreement)
	}
}

// largestGroup returns the earliest member of the largest group of two or
// more usable candidates equal after normalization (ties: the group whose
// first member comes first), or -1 when all usable candidates differ.
func (a *Agreement) largestGroup() int {
	size := make([]int, len(a.Group))
	for _, g := range a.Group {
		if g >= 0 {
			size[g]++
		}
	}
	best := -1
	for g, n := range size {
		if n >= 2 && (best < 0 || n > size[best]) {
			best = g
		}
	}
	return best
}

// argmax returns the usable candidate with the highest score (ties: the
// higher tiebreak score, when tiebreak is not nil, then the earlier
// candidate), or -1 when none is usable. When ok is not nil, only the
// candidates it accepts count.
func (a *Agreement) argmax(score, tiebreak []float64, ok func(int) bool) int {
	best := -1
	for i := range a.Status {
		if !a.Usable(i) || (ok != nil && !ok(i)) {
			continue
		}
		switch {
		case best < 0, score[i] > score[best]:
			best = i
		case score[i] == score[best] && tiebreak != nil && tiebreak[i] > tiebreak[best]:
			best = i
		}
	}
	return best
}

// keep records candidate pick as kept for reason.
func (d *Decision) keep(a *Agreement, pick int, reason Reason) {
	d.Kept, d.Pick, d.Reason, d.Output = true, pick, reason, a.Texts[pick]
}

// NormalizeAnswer lowercases s as Python's str.lower does, deletes every
// ASCII punctuation character and collapses white space as Python's
// str.split does: the normalization the reference applies before comparing
// outputs.
func NormalizeAnswer(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	pendingSpace := false
	for i, r := range s {
		var lower string
		switch {
		case r < utf8.RuneSelf:
			c := byte(r)
			if isASCIIPunct(c) {
				continue
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if isPySpace(r) {
				pendingSpace = b.Len() > 0
				continue
			}
			if pendingSpace {
				b.WriteByte(' ')
				pendingSpace = false
			}
			b.WriteByte(c)
			continue
		case isPySpace(r):
			pendingSpace = b.Len() > 0
			continue
		case r == '\u0130':
			lower = "i\u0307"
		case r == 'Σ':
			lower = string(finalSigma(s, i))
		default:
			lower = string(unicode.ToLower(r))
		}
		if pendingSpace {
			b.WriteByte(' ')
			pendingSpace = false
		}
		b.WriteString(lower)
	}
	return b.String()
}

// finalSigma returns the lowercase of the capital sigma at byte offset i
// of s: 'ς' at the end of a word (after a letter and not before one), as
// Python's str.lower does, 'σ' elsewhere.
func finalSigma(s string, i int) rune {
	before, _ := utf8.DecodeLastRuneInString(s[:i])
	after, _ := utf8.DecodeRuneInString(s[i+len("Σ"):])
	if i > 0 && unicode.IsLetter(before) && (i+len("Σ") == len(s) || !unicode.IsLetter(after)) {
		return 'ς'
	}
	return 'σ'
}
