package report

import (
	"cmp"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/output"
)

// Default sample sizes of the examples table.
const (
	DefaultKeptSamples     = 100
	DefaultRejectedSamples = 150
	DefaultPerReason       = 25
)

// Options tune Build. The zero value gives the defaults.
type Options struct {
	// Title names the report; "" uses the run directory or file name.
	Title string
	// KeptSamples bounds the kept examples shown (nil:
	// DefaultKeptSamples).
	KeptSamples *int
	// RejectedSamples bounds the rejected examples shown over all reasons
	// (nil: DefaultRejectedSamples), and PerReason those of one reason
	// (nil: DefaultPerReason).
	RejectedSamples *int
	PerReason       *int
}

// limits are Options' sample sizes, resolved.
type limits struct{ kept, rejected, perReason int }

func (o Options) limits() limits {
	get := func(p *int, def int) int {
		if p == nil {
			return def
		}
		return max(*p, 0)
	}
	return limits{get(o.KeptSamples, DefaultKeptSamples), get(o.RejectedSamples, DefaultRejectedSamples), get(o.PerReason, DefaultPerReason)}
}

// GroupKept is the examples group of kept records.
const GroupKept = "kept"

// Build reads the files of src in one pass and computes the report's
// figures. Malformed input is an error matching ErrInput that names the
// file, line and field.
func Build(src Source, opts Options) (*Figures, error) {
	if src.Manifest == "" && src.Data == "" && src.Rejected == "" {
		return nil, inputErrorf("nothing to report: no manifest, dataset or rejected file")
	}
	b := newBuilder(opts.limits())
	b.fig.Title = opts.Title
	if src.Manifest != "" {
		m, err := readManifest(src.Manifest)
		if err != nil {
			return nil, err
		}
		b.man = m
		b.fig.Inputs = append(b.fig.Inputs, filepath.Base(src.Manifest))
		if b.fig.Title == "" {
			b.fig.Title = filepath.Base(filepath.Dir(src.Manifest))
		}
	}
	if src.Data != "" {
		b.fig.Inputs = append(b.fig.Inputs, filepath.Base(src.Data))
		b.fig.Title = cmp.Or(b.fig.Title, filepath.Base(src.Data))
		name := filepath.Base(src.Data)
		if err := readData(src.Data, func(rec output.Record, p provenance, line int) error {
			b.kept(rec, p, fmt.Sprintf("%s:%d", name, line))
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if src.Rejected != "" {
		b.fig.Inputs = append(b.fig.Inputs, filepath.Base(src.Rejected))
		b.fig.Title = cmp.Or(b.fig.Title, filepath.Base(src.Rejected))
		name := filepath.Base(src.Rejected)
		if err := readRejected(src.Rejected, func(r rejectedLine, line int) error {
			b.rejected(r, fmt.Sprintf("%s:%d", name, line))
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if src.Data == "" && src.Manifest == "" {
		b.warn("no kept records given: the funnel's last stage and the length and verb figures are empty")
	}
	return b.finish(), nil
}

// builder accumulates the figures over one pass of the files. It is not
// safe for concurrent use.
type builder struct {
	lim limits
	fig Figures
	man *manifest

	// Dataset funnel: kept records and drops per type.
	keptByType map[string]int
	dropByType map[string]map[string]int
	untyped    int

	novelty    Novelty
	noveltySum float64
	noveltyN   int

	lengths [3]lengthHist
	verbs   map[string]int

	members memberStats

	samples  map[string]*sampler
	seq      int
	warnings map[string]bool
}

func newBuilder(lim limits) *builder {
	b := &builder{
		lim:        lim,
		keptByType: map[string]int{},
		dropByType: map[string]map[string]int{},
		verbs:      map[string]int{},
		samples:    map[string]*sampler{},
		warnings:   map[string]bool{},
	}
	b.novelty.Accepted = make([]int, NoveltyBins)
	b.novelty.Rejected = make([]int, NoveltyBins)
	b.members.index = map[string]int{}
	return b
}

func (b *builder) warn(format string, args ...any) {
	b.warnings[fmt.Sprintf(format, args...)] = true
}

// kept adds one record of the dataset.
func (b *builder) kept(rec output.Record, p provenance, where string) {
	meta := p.Meta
	typ := ""
	if meta != nil {
		typ = meta.Type
	}
	if typ == "" {
		b.untyped++
	}
	b.keptByType[typ]++
	if meta != nil && meta.NoveltyMax != nil {
		b.addNovelty(*meta.NoveltyMax, false)
	}
	b.lengths[0].add(countWords(rec.Instruction))
	b.lengths[1].add(countWords(rec.Input))
	b.lengths[2].add(countWords(rec.Output))
	b.verbs[LeadingVerb(rec.Instruction)]++

	var cands []string
	if meta != nil && meta.Consensus != nil {
		cands = p.Candidates
		b.members.decision(meta, cands, true)
	}
	b.seq++
	key := hashKey(GroupKept, rec.Instruction, rec.Input, rec.Output)
	b.sampler(GroupKept, b.lim.kept).offer(key, b.seq, func() Example {
		ex := Example{Group: GroupKept, Where: where,
			Instruction: cut(rec.Instruction), Input: cut(rec.Input), Output: cut(rec.Output)}
		fillMeta(&ex, meta, cands, rec.Output)
		return ex
	})
}

// rejected adds one line of a rejected file.
func (b *builder) rejected(r rejectedLine, where string) {
	reason := *r.Reason
	meta := r.Meta
	typ := ""
	if meta != nil {
		typ = meta.Type
	}
	if b.dropByType[typ] == nil {
		b.dropByType[typ] = map[string]int{}
	}
	b.dropByType[typ][reason]++
	if meta != nil && meta.NoveltyMax != nil {
		b.addNovelty(*meta.NoveltyMax, strings.HasSuffix(reason, "/"+string(filter.ReasonNotNovel)))
	}
	if meta != nil && meta.Consensus != nil {
		b.members.decision(meta, r.Candidates, false)
	}
	b.seq++
	key := hashKey(reason, r.Instruction, r.Input, r.Output, r.Raw, r.Error)
	b.sampler(reason, b.lim.perReason).offer(key, b.seq, func() Example {
		ex := Example{Group: reason, Where: where, Source: r.Source,
			Instruction: cut(r.Instruction), Input: cut(r.Input), Output: cut(r.Output),
			Raw: cut(r.Raw), Error: cut(r.Error)}
		fillMeta(&ex, meta, r.Candidates, "")
		return ex
	})
}

func (b *builder) sampler(group string, k int) *sampler {
	s := b.samples[group]
	if s == nil {
		s = newSampler(k)
		b.samples[group] = s
	}
	return s
}

func (b *builder) addNovelty(v float64, notNovel bool) {
	i := min(max(int(v*NoveltyBins), 0), NoveltyBins-1)
	if notNovel {
		b.novelty.Rejected[i]++
		return
	}
	b.novelty.Accepted[i]++
	b.noveltySum += v
	b.noveltyN++
}

// fillMeta copies an example's provenance: its type, novelty and the
// consensus decision with every candidate. For a kept record the files
// hold only the winning candidate's text (output), unless the line
// records its candidates.
func fillMeta(ex *Example, meta *output.Meta, cands []string, output string) {
	if meta == nil {
		return
	}
	ex.Type = meta.Type
	ex.NoveltyMax = meta.NoveltyMax
	if ex.Source == "" {
		ex.Source = meta.Source
	}
	c := meta.Consensus
	if c == nil {
		return
	}
	ex.Decision = c.Reason
	k := len(c.Scores)
	if k < 2 || len(c.Pairwise) != k*(k-1)/2 {
		return
	}
	minPair := c.MinPair
	ex.MinPair = &minPair
	names := candidateNames(meta, k)
	shown := min(k, MaxCandidates)
	for i := range shown {
		cand := Candidate{Name: names[i], Score: c.Scores[i], Picked: i == c.Pick && c.Pick >= 0}
		switch {
		case len(cands) == k:
			cand.Text, cand.Recorded = cut(cands[i]), true
		case cand.Picked && output != "":
			cand.Text, cand.Recorded = cut(output), true
		}
		cand.Pairwise = make([]*float64, shown)
		for j := range shown {
			if j != i {
				v := c.Pairwise[filter.PairIndex(k, i, j)]
				cand.Pairwise[j] = &v
			}
		}
		ex.Candidates = append(ex.Candidates, cand)
	}
}

// candidateNames names the k candidates of a decision: candidate 0 is the
// instance model's own output, the others the ensemble members in order.
func candidateNames(meta *output.Meta, k int) []string {
	names := make([]string, k)
	names[0] = cmp.Or(meta.InstanceModel, "original") + " (instance)"
	for i := 1; i < k; i++ {
		if len(meta.Ensemble) == k-1 && meta.Ensemble[i-1] != "" {
			names[i] = meta.Ensemble[i-1]
		} else {
			names[i] = fmt.Sprintf("candidate %d", i)
		}
	}
	return names
}

func (b *builder) finish() *Figures {
	f := &b.fig
	if b.man != nil {
		f.Run = runSummary(b.man)
		f.Novelty.Threshold = b.man.NoveltyThreshold
	}
	f.Funnels = b.funnels()
	f.Novelty.Accepted, f.Novelty.Rejected = b.novelty.Accepted, b.novelty.Rejected
	if b.noveltyN > 0 {
		f.Novelty.Mean = b.noveltySum / float64(b.noveltyN)
	}
	for i, name := range []string{"instruction", "input", "output"} {
		f.Lengths = append(f.Lengths, b.lengths[i].summary(name))
	}
	f.Verbs = verbSummary(b.verbs)
	f.Members, f.Agreement = b.members.summary(b.man)
	if b.members.bad > 0 {
		b.warn("%d consensus decisions have scores that do not fit their candidates; they are left out of the member figures", b.members.bad)
	}
	if b.man != nil {
		for _, name := range slices.Sorted(maps.Keys(b.man.Calls)) {
			c := b.man.Calls[name]
			c.Name = name
			f.Calls = append(f.Calls, c)
		}
		if len(b.man.Calls) > 0 {
			t := b.man.Totals
			f.Totals = &t
		}
		f.Timeline = thin(b.man.Timeline, maxTimeline)
		if len(b.man.Timeline) == 0 {
			b.warn("the manifest has no timeline")
		}
	}
	f.Examples, f.Groups = b.sample()
	f.Warnings = slices.Sorted(maps.Keys(b.warnings))
	return f
}

func runSummary(m *manifest) *RunSummary {
	s := &RunSummary{Version: m.Version, ConfigHash: m.ConfigHash, Seed: m.Seed, Status: m.Status,
		Error: m.Error, Started: m.Started, Seconds: m.Seconds, NoveltyThreshold: m.NoveltyThreshold,
		Records: m.Output.Records, Output: m.Output.Path}
	if m.Seeds.Source != "" {
		s.Seeds = fmt.Sprintf("%s (%d tasks: %d A, %d B)", m.Seeds.Source, m.Seeds.Tasks, m.Seeds.TypeA, m.Seeds.TypeB)
	}
	for _, md := range m.Models {
		s.Models = append(s.Models, fmt.Sprintf("%s = %s:%s [%s]", md.Name, md.Backend, md.Model, strings.Join(md.Roles, ", ")))
	}
	return s
}

// countWords counts the white-space separated words of s, as
// len(strings.Fields(s)) does, without allocating.
func countWords(s string) int {
	n, in := 0, false
	for _, r := range s {
		space := unicode.IsSpace(r)
		if !space && !in {
			n++
		}
		in = !space
	}
	return n
}

// maxTimeline bounds the timeline's points.
const maxTimeline = 512

// thin keeps at most n evenly spaced points of pts, the last among them.
func thin(pts []TimePoint, n int) []TimePoint {
	if len(pts) <= n {
		return pts
	}
	out := make([]TimePoint, 0, n)
	for i := range n {
		out = append(out, pts[(i+1)*len(pts)/n-1])
	}
	return out
}

// lengthCap bounds the exact length counts; longer fields count as
// lengthCap words for the quantiles (Max stays exact).
const lengthCap = 4096

// lengthHist counts word lengths exactly up to lengthCap.
type lengthHist struct {
	counts [lengthCap + 1]int
	n, max int
	sum    float64
}

func (h *lengthHist) add(n int) {
	h.counts[min(n, lengthCap)]++
	h.n++
	h.sum += float64(n)
	h.max = max(h.max, n)
}

func (h *lengthHist) quantile(q float64) int {
	rank := int(q * float64(h.n-1))
	seen := 0
	for v, c := range h.counts {
		seen += c
		if seen > rank {
			return v
		}
	}
	return lengthCap
}

func (h *lengthHist) summary(field string) Lengths {
	l := Lengths{Field: field, N: h.n, Max: h.max}
	for i, lo := range lengthEdges {
		hi := lengthCap + 1
		name := fmt.Sprintf("%d+", lo)
		if i+1 < len(lengthEdges) {
			hi = lengthEdges[i+1]
			name = fmt.Sprintf("%d–%d", lo, hi-1)
			if hi-1 == lo {
				name = fmt.Sprint(lo)
			}
		}
		n := 0
		for _, c := range h.counts[lo:hi] {
			n += c
		}
		l.Bins = append(l.Bins, Count{Name: name, Count: n})
	}
	if h.n > 0 {
		l.Mean = h.sum / float64(h.n)
		l.Median = h.quantile(0.5)
		l.P90 = h.quantile(0.9)
	}
	return l
}

func verbSummary(counts map[string]int) Verbs {
	v := Verbs{Question: counts[VerbQuestion], None: counts[VerbNone]}
	var all []Count
	for name, n := range counts {
		v.Instructions += n
		if name != VerbQuestion && name != VerbNone {
			all = append(all, Count{Name: name, Count: n})
		}
	}
	v.Distinct = len(all)
	slices.SortFunc(all, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name))
	})
	v.Top = all[:min(len(all), TopVerbs)]
	top := 0
	for _, c := range v.Top {
		top += c.Count
	}
	if v.Instructions > 0 {
		v.TopShare = float64(top) / float64(v.Instructions)
	}
	return v
}
