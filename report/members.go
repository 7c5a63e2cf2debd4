package report

import (
	"strings"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/output"
)

// memberStats accumulates the consensus figures of every member over the
// decisions of the kept and rejected files.
type memberStats struct {
	index  map[string]int // member name -> position
	names  []string
	models []string // the model behind each member, for the manifest's calls
	votes  []int
	wins   []int
	seen   []int
	empty  []int
	pair   map[[2]int]*pairSum
	bad    int
}

type pairSum struct {
	sum float64
	n   int
}

func (m *memberStats) member(name, model string) int {
	if i, ok := m.index[name]; ok {
		return i
	}
	i := len(m.names)
	m.index[name] = i
	m.names = append(m.names, name)
	m.models = append(m.models, model)
	m.votes = append(m.votes, 0)
	m.wins = append(m.wins, 0)
	m.seen = append(m.seen, 0)
	m.empty = append(m.empty, 0)
	return i
}

// decision adds one consensus decision. kept tells whether the record was
// kept (a pick that was then dropped as empty is no win); cands are the
// candidates' texts when the line records them.
func (m *memberStats) decision(meta *output.Meta, cands []string, kept bool) {
	c := meta.Consensus
	k := len(c.Scores)
	if k < 2 || len(c.Pairwise) != k*(k-1)/2 || c.Pick >= k {
		m.bad++
		return
	}
	names := candidateNames(meta, k)
	idx := make([]int, k)
	for i, name := range names {
		model := meta.InstanceModel
		if i > 0 {
			model = name
		}
		idx[i] = m.member(name, model)
		m.votes[idx[i]]++
		if len(cands) == k {
			m.seen[idx[i]]++
			if strings.TrimSpace(cands[i]) == "" {
				m.empty[idx[i]]++
			}
		}
	}
	if kept && c.Pick >= 0 {
		m.wins[idx[c.Pick]]++
	}
	if m.pair == nil {
		m.pair = map[[2]int]*pairSum{}
	}
	for i := range k {
		for j := i + 1; j < k; j++ {
			a, b := idx[i], idx[j]
			if a == b {
				continue
			}
			if a > b {
				a, b = b, a
			}
			p := m.pair[[2]int{a, b}]
			if p == nil {
				p = &pairSum{}
				m.pair[[2]int{a, b}] = p
			}
			p.sum += c.Pairwise[filter.PairIndex(k, i, j)]
			p.n++
		}
	}
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// summary returns the members in order of first appearance and their
// agreement matrix; man, when not nil, gives each member's calls.
func (m *memberStats) summary(man *manifest) ([]Member, Agreement) {
	n := len(m.names)
	members := make([]Member, n)
	for i := range n {
		mb := Member{Name: m.names[i], Votes: m.votes[i], Wins: m.wins[i], Seen: m.seen[i], Empty: m.empty[i]}
		mb.WinRate = ratio(int64(mb.Wins), int64(mb.Votes))
		mb.EmptyRate = ratio(int64(mb.Empty), int64(mb.Seen))
		if man != nil {
			if c, ok := man.Calls[m.models[i]]; ok {
				mb.Calls, mb.Failures = c.Calls, c.Failures
				mb.FailureRate = ratio(c.Failures, c.Calls)
			}
		}
		members[i] = mb
	}
	ag := Agreement{Mean: make([][]*float64, n), N: make([][]int, n)}
	for i := range n {
		ag.Mean[i] = make([]*float64, n)
		ag.N[i] = make([]int, n)
	}
	for key, p := range m.pair {
		mean := p.sum / float64(p.n)
		a, b := key[0], key[1]
		ag.Mean[a][b], ag.Mean[b][a] = &mean, &mean
		ag.N[a][b], ag.N[b][a] = p.n, p.n
	}
	return members, ag
}
