package filter

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Metric names the agreement score the consensus rule sums. Both are
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

// ConsensusOptions parameterize the consensus rule. The zero value is the
// reference's rule: Rouge-L with stemming and a threshold of 0.01.
type ConsensusOptions struct {
	// Metric is the pairwise agreement score; "" means MetricRougeL.
	Metric Metric
	// MinAgreement is the threshold on the lowest pairwise score (strict
	// >). Nil means DefaultMinAgreement; point at 0 to keep any pair that
	// shares a token.
	MinAgreement *float64
}

func (o ConsensusOptions) minAgreement() float64 {
	if o.MinAgreement == nil {
		return DefaultMinAgreement
	}
	return *o.MinAgreement
}

// Decision is the outcome of the consensus rule for one example.
type Decision struct {
	// Kept reports whether the example is kept.
	Kept bool `json:"kept"`
	// Pick is the index of the chosen candidate, or -1 when dropped.
	Pick int `json:"pick"`
	// Output is the chosen candidate with surrounding white space
	// trimmed; empty when dropped, and possibly when kept by exact match.
	Output string `json:"output,omitempty"`
	// Reason is ReasonExactMatch or ReasonAgreement when kept,
	// ReasonLowAgreement or ReasonEmptyPick when dropped.
	Reason Reason `json:"reason"`
	// Pairwise holds the agreement of every pair of candidates in the
	// order (0,1), (0,2), …, (0,k-1), (1,2), …; see PairIndex.
	Pairwise []float64 `json:"pairwise"`
	// Scores holds each candidate's summed agreement with the others.
	Scores []float64 `json:"scores"`
	// MinPair is the lowest pairwise agreement.
	MinPair float64 `json:"min_pair"`
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

// Consensus applies the Ensemble-Instruct selection rule to k ≥ 2
// candidate outputs for one example. By convention candidate 0 is the
// example's own output and the rest are the ensemble models' outputs, in
// a fixed order: ties go to the earlier candidate.
//
//  1. Each candidate is trimmed and normalized: lowercased, ASCII
//     punctuation deleted, white space collapsed (NormalizeAnswer).
//  2. If two or more candidates are equal after normalization, the
//     earliest member of the largest group of equal candidates is kept
//     (ties between groups: the group holding the earliest candidate).
//  3. Otherwise every pair is scored with the metric, each candidate's
//     score is the sum of its pairwise scores, and the highest wins.
//  4. In case 3 the example is kept only if the lowest pairwise score
//     is above the threshold and the pick is not empty. Case 2 keeps its
//     pick even when it is empty (the reference does: two ensemble
//     models that both answer "" agree), so Output may be "" when Kept.
//
// For k = 3 this is exactly the reference implementation's rule. With
// fewer than two candidates nothing can agree and the example is dropped
// with ReasonLowAgreement. Consensus is safe for concurrent use.
func Consensus(candidates []string, opts ConsensusOptions) Decision {
	k := len(candidates)
	d := Decision{Pick: -1}
	if k < 2 {
		d.Reason = ReasonLowAgreement
		return d
	}
	trimmed := make([]string, k)
	norms := make([]string, k)
	tokens := make([][]string, k)
	for i, c := range candidates {
		trimmed[i] = strings.TrimSpace(c)
		norms[i] = NormalizeAnswer(trimmed[i])
		tokens[i] = TokenizeStem(norms[i])
	}

	d.Pairwise = make([]float64, 0, k*(k-1)/2)
	d.Scores = make([]float64, k)
	d.MinPair = 1
	for i := 0; i < k; i++ {
		for j := i + 1; j < k; j++ {
			var s float64
			if opts.Metric == MetricRouge1 {
				s = Rouge1(tokens[i], tokens[j]).F
			} else {
				s = RougeL(tokens[i], tokens[j]).F
			}
			d.Pairwise = append(d.Pairwise, s)
			if s < d.MinPair {
				d.MinPair = s
			}
		}
	}
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			if j != i {
				d.Scores[i] += d.Pairwise[PairIndex(k, i, j)]
			}
		}
	}

	if pick := largestEqualGroup(norms); pick >= 0 {
		// As in the reference, agreement is enough here, even on an
		// empty output; callers that must not emit empty outputs check
		// Output themselves.
		d.Kept, d.Pick, d.Reason, d.Output = true, pick, ReasonExactMatch, trimmed[pick]
		return d
	}
	best := 0
	for i := 1; i < k; i++ {
		if d.Scores[i] > d.Scores[best] {
			best = i
		}
	}
	switch {
	case d.MinPair <= opts.minAgreement():
		d.Reason = ReasonLowAgreement
	case trimmed[best] == "":
		d.Reason = ReasonEmptyPick
	default:
		d.Kept, d.Pick, d.Reason, d.Output = true, best, ReasonAgreement, trimmed[best]
	}
	return d
}

// largestEqualGroup returns the earliest member of the largest group of
// two or more equal strings (ties: the group whose first member comes
// first), or -1 when all strings differ.
func largestEqualGroup(norms []string) int {
	bestFirst, bestSize := -1, 1
	for i := range norms {
		size := 1
		seenBefore := false
		for j := 0; j < len(norms); j++ {
			if j == i || norms[j] != norms[i] {
				continue
			}
			if j < i {
				seenBefore = true
				break
			}
			size++
		}
		if !seenBefore && size > bestSize {
			bestFirst, bestSize = i, size
		}
	}
	return bestFirst
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
