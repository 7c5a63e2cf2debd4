package filter

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Reliability accumulates per-member statistics over a run's consensus
// decisions: how often each member answered, how often its output was
// empty, failed or rejected, how often it was picked, and its mean
// agreement with every other member. From those it estimates each
// member's reliability (Weights) with no ground truth, for RuleWeighted.
//
// Members are identified by name, in the order they are first seen, so
// decisions may come from different subsets of a pool. The zero value is
// ready to use. A Reliability is safe for concurrent use; its estimates
// depend on which decisions it has seen, so a caller that wants
// deterministic weights feeds it in a deterministic order.
type Reliability struct {
	mu      sync.Mutex
	index   map[string]int
	members []memberStats
	pairSum [][]float64 // pairSum[i][j], i != j: summed agreement over rows both were usable
	pairN   [][]int     // rows both were usable
	rows    int
	kept    int
	weights []float64 // cached estimate; nil when stale
}

// memberStats are one member's counts.
type memberStats struct {
	name                          string
	rows, usable, won             int
	empty, failed, rejected, best int
	judged                        int     // outputs a judge graded
	judgeSum                      float64 // their grades
}

// Observe records one decision, names[i] being the member that produced
// candidate i. A name given twice (a model that wrote the instance and is
// also in the ensemble) counts as two members, the later one named
// "NAME#2" (then "#3", …), here and in Weights. names must be as long as
// d.Status; Observe panics otherwise, as it is a programming error.
func (r *Reliability) Observe(names []string, d Decision) {
	if len(names) != len(d.Status) {
		panic(fmt.Sprintf("filter: Reliability.Observe with %d names for %d candidates", len(names), len(d.Status)))
	}
	names = distinctNames(names)
	r.mu.Lock()
	defer r.mu.Unlock()
	idx := make([]int, len(names))
	for i, n := range names {
		idx[i] = r.member(n)
	}
	r.rows++
	if d.Kept {
		r.kept++
	}
	k := len(names)
	for i, m := range idx {
		s := &r.members[m]
		s.rows++
		switch d.Status[i] {
		case CandidateOK:
			s.usable++
		case CandidateFailed:
			s.failed++
		case CandidateEmpty:
			s.empty++
		case CandidateRejected:
			s.rejected++
		}
		if d.Kept && d.Pick == i {
			s.won++
		}
		if d.Best == i {
			s.best++
		}
		if i < len(d.Judge) && d.Judge[i] > 0 {
			s.judged++
			s.judgeSum += d.Judge[i]
		}
		if d.Status[i] != CandidateOK {
			continue
		}
		for j := i + 1; j < k; j++ {
			if d.Status[j] != CandidateOK {
				continue
			}
			a := d.Pairwise[PairIndex(k, i, j)]
			n := idx[j]
			r.pairSum[m][n] += a
			r.pairSum[n][m] += a
			r.pairN[m][n]++
			r.pairN[n][m]++
		}
	}
	r.weights = nil
}

// distinctNames returns names with every repeat of a name suffixed "#2",
// "#3", … in order; names itself when there is no repeat.
func distinctNames(names []string) []string {
	var out []string
	for i, n := range names {
		if !slices.Contains(names[:i], n) {
			continue
		}
		if out == nil {
			out = slices.Clone(names)
		}
		for c := 2; ; c++ {
			if alt := n + "#" + strconv.Itoa(c); !slices.Contains(out[:i], alt) && !slices.Contains(names, alt) {
				out[i] = alt
				break
			}
		}
	}
	if out == nil {
		return names
	}
	return out
}

// member returns the index of the member named name, adding it if new.
// r.mu is held.
func (r *Reliability) member(name string) int {
	if i, ok := r.index[name]; ok {
		return i
	}
	if r.index == nil {
		r.index = map[string]int{}
	}
	i := len(r.members)
	r.index[name] = i
	r.members = append(r.members, memberStats{name: name})
	for j := range r.pairSum {
		r.pairSum[j] = append(r.pairSum[j], 0)
		r.pairN[j] = append(r.pairN[j], 0)
	}
	r.pairSum = append(r.pairSum, make([]float64, i+1))
	r.pairN = append(r.pairN, make([]int, i+1))
	return i
}

// Weights returns the estimated reliability of each named member, aligned
// with names, for Votes.Weights. A member not seen yet gets the mean of
// the others' (1 when none is known), so the first decisions of a run are
// made with equal weights.
//
// The estimate is the fixed point of
//
//	w[j] = u[j] · Σ_{i≠j} w[i]·A[i][j] / Σ_{i≠j} w[i]
//
// where A[i][j] is the mean agreement of members i and j over the rows
// where both outputs were usable (pairs never usable together are left
// out of both sums), and u[j] is the share of member j's answers that
// were usable (not empty, not rejected; failed calls are not answers). It
// is a member's expected agreement with the reliability-weighted other
// members, discounted by how often it gives no usable answer: a
// Dawid–Skene-style estimate, started from equal weights and iterated to
// convergence. It has no tuned constant.
func (r *Reliability) Weights(names []string) []float64 {
	names = distinctNames(names)
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.estimate()
	out := make([]float64, len(names))
	unknown := make([]bool, len(names))
	known, sum := 0, 0.0
	for i, n := range names {
		m, ok := r.index[n]
		if !ok {
			unknown[i] = true
			continue
		}
		out[i] = w[m]
		sum += w[m]
		known++
	}
	fill := 1.0
	if known > 0 {
		fill = sum / float64(known)
	}
	for i := range out {
		if unknown[i] {
			out[i] = fill
		}
	}
	return out
}

// Reliability estimation stops when no weight moves by more than
// weightTolerance, or after weightMaxIterations. These are numerical
// settings of the fixed-point iteration, not tuned to any data: the
// iteration converges in a few dozen steps on every pool measured.
const (
	weightTolerance     = 1e-12
	weightMaxIterations = 1000
)

// estimate returns the reliability of every member, computing it when
// stale. r.mu is held.
func (r *Reliability) estimate() []float64 {
	if r.weights != nil {
		return r.weights
	}
	m := len(r.members)
	usableShare := make([]float64, m)
	w := make([]float64, m)
	for j, s := range r.members {
		if answered := s.rows - s.failed; answered > 0 {
			usableShare[j] = float64(s.usable) / float64(answered)
		}
		w[j] = 1
	}
	next := make([]float64, m)
	for range weightMaxIterations {
		moved := 0.0
		for j := range m {
			num, den := 0.0, 0.0
			for i := range m {
				if i != j && r.pairN[i][j] > 0 {
					num += w[i] * r.pairSum[i][j] / float64(r.pairN[i][j])
					den += w[i]
				}
			}
			next[j] = 0
			if den > 0 {
				next[j] = usableShare[j] * num / den
			}
			moved = math.Max(moved, math.Abs(next[j]-w[j]))
		}
		w, next = next, w
		if moved <= weightTolerance {
			break
		}
	}
	r.weights = w
	return w
}

// ReliabilitySummary is a snapshot of a Reliability, for the run manifest
// (it encodes as JSON) and the end-of-run summary (String).
type ReliabilitySummary struct {
	// Rows is the number of decisions observed, Kept how many kept.
	Rows int `json:"rows"`
	Kept int `json:"kept"`
	// Members are the members in the order first seen.
	Members []MemberReliability `json:"members"`
	// Agreement[i][j] is the mean agreement of members i and j over the
	// Pairs[i][j] rows where both outputs were usable (0 when none); the
	// diagonal is 1, with Pairs[i][i] the member's usable outputs.
	Agreement [][]float64 `json:"agreement"`
	Pairs     [][]int     `json:"pairs"`
}

// MemberReliability is one member's line of a ReliabilitySummary.
type MemberReliability struct {
	Name string `json:"name"`
	// Rows counts the decisions the member took part in; Won those where
	// its output was kept; Best those where the rule ranked it first,
	// kept or not.
	Rows int `json:"rows"`
	Won  int `json:"won"`
	Best int `json:"best"`
	// Empty, Failed and Rejected count its unusable outputs by kind.
	Empty    int `json:"empty"`
	Failed   int `json:"failed"`
	Rejected int `json:"rejected"`
	// Weight is its estimated reliability (see Reliability.Weights).
	Weight float64 `json:"weight"`
	// Judged counts its outputs a judge graded (the judge rule), and
	// JudgeMean is their mean grade; both absent without a judge.
	Judged    int     `json:"judged,omitempty"`
	JudgeMean float64 `json:"judge_mean,omitempty"`
}

// Summary returns a snapshot of the statistics.
func (r *Reliability) Summary() ReliabilitySummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.estimate()
	m := len(r.members)
	s := ReliabilitySummary{
		Rows: r.rows, Kept: r.kept,
		Members:   make([]MemberReliability, m),
		Agreement: make([][]float64, m),
		Pairs:     make([][]int, m),
	}
	for i, st := range r.members {
		s.Members[i] = MemberReliability{
			Name: st.name, Rows: st.rows, Won: st.won, Best: st.best,
			Empty: st.empty, Failed: st.failed, Rejected: st.rejected, Weight: w[i],
		}
		if st.judged > 0 {
			s.Members[i].Judged, s.Members[i].JudgeMean = st.judged, st.judgeSum/float64(st.judged)
		}
		s.Agreement[i] = make([]float64, m)
		s.Pairs[i] = make([]int, m)
		for j := range m {
			switch {
			case i == j:
				s.Agreement[i][j], s.Pairs[i][j] = 1, st.usable
			case r.pairN[i][j] > 0:
				s.Agreement[i][j] = r.pairSum[i][j] / float64(r.pairN[i][j])
				s.Pairs[i][j] = r.pairN[i][j]
			}
		}
	}
	return s
}

// summaryMatrixMax is the most members whose agreement matrix String
// prints: more would not fit in 80 columns.
const summaryMatrixMax = 13

// String renders the summary for a terminal, at most 80 columns wide: a
// line per member (rows, share won, empty/failed/rejected counts, weight,
// and with a judge the mean grade of its outputs),
// the member with the lowest weight flagged when it is below half the
// median, and the agreement matrix with members numbered.
func (s ReliabilitySummary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "consensus: %d rows, %d kept\n", s.Rows, s.Kept)
	if len(s.Members) == 0 {
		return b.String()
	}
	const nameWidth = 36
	judged := s.Judged()
	nameW := nameWidth
	judgeHead := ""
	if judged {
		nameW, judgeHead = nameWidth-6, " judge"
	}
	fmt.Fprintf(&b, "   %-*s %5s %5s %5s %5s %5s %6s%s\n", nameW, "member", "rows", "won", "empty", "fail", "rej", "weight", judgeHead)
	weak := s.weakest()
	for i, m := range s.Members {
		won := "-"
		if m.Rows > 0 {
			won = fmt.Sprintf("%.0f%%", 100*float64(m.Won)/float64(m.Rows))
		}
		flag := ""
		if i == weak {
			flag = " <"
		}
		fmt.Fprintf(&b, "%2d %-*s %5d %5s %5d %5d %5d %6.3f%s%s\n", i+1, nameW, clip(m.Name, nameW),
			m.Rows, won, m.Empty, m.Failed, m.Rejected, m.Weight, m.judgeColumn(judged), flag)
	}
	if weak >= 0 {
		fmt.Fprintf(&b, "   < lowest weight, under half the median: adds little to the vote\n")
	}
	if len(s.Members) > summaryMatrixMax {
		b.WriteString("   (agreement matrix: too many members to print; see the manifest)\n")
		return b.String()
	}
	b.WriteString("   agreement")
	for j := range s.Members {
		fmt.Fprintf(&b, " %4d", j+1)
	}
	b.WriteByte('\n')
	for i := range s.Members {
		fmt.Fprintf(&b, "   %9d", i+1)
		for j := range s.Members {
			switch {
			case i == j:
				b.WriteString("    -")
			case s.Pairs[i][j] == 0:
				b.WriteString("    ?")
			default:
				fmt.Fprintf(&b, " %4s", strings.TrimPrefix(fmt.Sprintf("%.2f", s.Agreement[i][j]), "0"))
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Judged reports whether a judge graded any member's output.
func (s ReliabilitySummary) Judged() bool {
	return slices.ContainsFunc(s.Members, func(m MemberReliability) bool { return m.Judged > 0 })
}

// judgeColumn is the member's mean judge grade as a summary column (" "
// and 5 characters; "-" when none of its outputs was graded), or "" when
// no judge graded anything.
func (m MemberReliability) judgeColumn(judged bool) string {
	switch {
	case !judged:
		return ""
	case m.Judged == 0:
		return fmt.Sprintf(" %5s", "-")
	}
	return fmt.Sprintf(" %5.1f", m.JudgeMean)
}

// weakest returns the member with the lowest weight when it is below half
// the median weight, or -1.
func (s ReliabilitySummary) weakest() int {
	if len(s.Members) < 2 {
		return -1
	}
	ws := make([]float64, len(s.Members))
	low := 0
	for i, m := range s.Members {
		ws[i] = m.Weight
		if m.Weight < s.Members[low].Weight {
			low = i
		}
	}
	slices.Sort(ws)
	median := ws[len(ws)/2]
	if len(ws)%2 == 0 {
		median = (ws[len(ws)/2-1] + ws[len(ws)/2]) / 2
	}
	if s.Members[low].Weight < median/2 {
		return low
	}
	return -1
}

// clip shortens s to at most n runes, marking a cut with "~".
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "~"
}
