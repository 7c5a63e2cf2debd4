package report

import (
	"cmp"
	"container/heap"
	"hash/fnv"
	"maps"
	"slices"
	"unicode/utf8"
)

// MaxExampleText bounds each text of a sampled example (instruction,
// input, output, raw reply, error, and each candidate) to this many bytes
// of escaped HTML; the rest is cut, and the page says how much. With the
// sample sizes this bounds the page (see docs/report.md).
const MaxExampleText = 500

// MaxCandidates bounds the candidates shown for one example.
const MaxCandidates = 8

// cut returns the start of s that fits MaxExampleText bytes once
// html/template has escaped it.
func cut(s string) Text {
	size := 0
	for i, r := range s {
		size += escapedLen(r)
		if size > MaxExampleText {
			return Text{S: s[:i], Cut: len(s) - i}
		}
	}
	return Text{S: s}
}

// escapedLen is the size of r in an HTML text node as html/template
// writes it.
func escapedLen(r rune) int {
	switch r {
	case '<', '>':
		return 4 // &lt; &gt;
	case '&':
		return 5 // &amp;
	case '"', '\'', '+':
		return 5 // &#34; &#39; &#43;
	case 0, utf8.RuneError:
		return 3
	}
	return utf8.RuneLen(r)
}

// hashKey orders examples for sampling by their content, so the sample
// does not depend on where a record sits in the file.
func hashKey(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// sampler keeps the k examples of one group with the lowest content
// hashes (ties: the earlier one): a deterministic sample of a stream in
// O(k) memory. It is not safe for concurrent use.
type sampler struct {
	k     int
	total int
	h     sampleHeap
}

type sampled struct {
	key uint64
	seq int
	ex  Example
}

// sampleHeap is a max-heap on (key, seq): its root is the first to go.
type sampleHeap []sampled

func (h sampleHeap) Len() int           { return len(h) }
func (h sampleHeap) Less(i, j int) bool { return after(h[i], h[j]) }
func (h sampleHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *sampleHeap) Push(x any)        { *h = append(*h, x.(sampled)) }
func (h *sampleHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func after(a, b sampled) bool {
	return a.key > b.key || a.key == b.key && a.seq > b.seq
}

func newSampler(k int) *sampler { return &sampler{k: k} }

// offer counts one example and keeps it if it is among the k lowest;
// build makes the example only when it is kept.
func (s *sampler) offer(key uint64, seq int, build func() Example) {
	s.total++
	if s.k <= 0 {
		return
	}
	c := sampled{key: key, seq: seq}
	if len(s.h) == s.k {
		if after(c, s.h[0]) {
			return
		}
		heap.Pop(&s.h)
	}
	c.ex = build()
	heap.Push(&s.h, c)
}

// lowest returns the n kept examples with the lowest keys.
func (s *sampler) lowest(n int) []sampled {
	all := slices.Clone(s.h)
	slices.SortFunc(all, func(a, b sampled) int { return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.seq, b.seq)) })
	return all[:min(max(n, 0), len(all))]
}

// sample returns the examples shown, kept first and then each reason,
// most frequent first, each group in file order; and the groups. The
// rejected groups share RejectedSamples: each gets the same cap, the
// largest that fits.
func (b *builder) sample() ([]Example, []Group) {
	var reasons []string
	for g := range maps.Keys(b.samples) {
		if g != GroupKept {
			reasons = append(reasons, g)
		}
	}
	slices.SortFunc(reasons, func(x, y string) int {
		return cmp.Or(cmp.Compare(b.samples[y].total, b.samples[x].total), cmp.Compare(x, y))
	})
	capPer := b.lim.perReason
	for capPer > 0 {
		n := 0
		for _, r := range reasons {
			n += min(capPer, len(b.samples[r].h))
		}
		if n <= b.lim.rejected {
			break
		}
		capPer--
	}
	var examples []Example
	var groups []Group
	add := func(name string, n int) {
		s := b.samples[name]
		picked := s.lowest(n)
		slices.SortFunc(picked, func(a, b sampled) int { return cmp.Compare(a.seq, b.seq) })
		for _, p := range picked {
			examples = append(examples, p.ex)
		}
		groups = append(groups, Group{Name: name, Total: s.total, Shown: len(picked), IsKept: name == GroupKept})
	}
	if _, ok := b.samples[GroupKept]; ok {
		add(GroupKept, b.lim.kept)
	}
	for _, r := range reasons {
		add(r, capPer)
	}
	return examples, groups
}
