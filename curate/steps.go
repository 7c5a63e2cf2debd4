package curate

import (
	"context"
	"fmt"
	"strings"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"github.com/ensinstruct/ensinstruct/seeds"
	"github.com/google/uuid"
)

// heuristics applies the instruction checks and the instance rules.
func (f *state) heuristics(_ context.Context, chunk []item) ([]item, error) {
	h := f.opts.Heuristics
	rules := h.Instance
	rules.AllowEmptyInput = !h.RequireInput
	for i := range chunk {
		it := &chunk[i]
		if !it.alive() {
			continue
		}
		instr := strings.TrimSpace(it.rec.Instruction)
		if r := f.checks.Check(instr); r != "" {
			it.drop = StageHeuristics + "/" + string(r)
			continue
		}
		typ := seeds.TypeB
		if h.RequireInput || len(filter.PyFields(it.rec.Input)) > 0 {
			typ = seeds.TypeA
		}
		if r := filter.CheckInstance(typ, instr, it.rec.Input, it.rec.Output, rules); r != "" {
			it.drop = StageHeuristics + "/" + string(r)
		}
	}
	return chunk, nil
}

// dedup runs the novelty index over each chunk's surviving instructions,
// in order. It closes out.
func (f *state) dedup(ctx context.Context, in <-chan []item, out chan<- []item) error {
	defer close(out)
	threshold := *f.opts.Dedup
	texts := make([]string, 0, chunkSize)
	idx := make([]int, 0, chunkSize)
	for {
		chunk, ok, err := recv(ctx, in)
		if !ok {
			return err
		}
		texts, idx = texts[:0], idx[:0]
		for i := range chunk {
			if chunk[i].alive() {
				texts = append(texts, chunk[i].rec.Instruction)
				idx = append(idx, i)
			}
		}
		nov := f.index.Dedup(texts, threshold)
		for j, n := range nov {
			it := &chunk[idx[j]]
			// Under the prefix index only a dropped record's score is
			// known (the first record's 0 too, but a column that is null
			// on every kept line but one would not load as one type).
			it.hasNovelty, it.novelty = n.Exact && (f.opts.NoveltyMax || !n.Novel), n.Max
			if !n.Novel {
				it.drop = StageDedup + "/" + string(filter.ReasonNotNovel)
			}
		}
		if err := send(ctx, out, chunk); err != nil {
			return err
		}
	}
}

// offline applies the consensus rule to each record's own output and its
// candidates from the candidate sources.
func (f *state) offline(ctx context.Context, chunk []item) ([]item, error) {
	for i := range chunk {
		it := &chunk[i]
		if !it.alive() {
			continue
		}
		cands := make([]string, 0, 1+len(it.cands))
		cands = append(cands, it.rec.Output)
		cands = append(cands, it.cands...)
		if f.deferred() {
			f.measure(it, StageConsensus, cands, f.candNames)
			if err := f.grade(ctx, it); err != nil {
				return chunk, err
			}
			continue
		}
		f.decide(it, StageConsensus, cands, f.candNames)
	}
	return chunk, nil
}

// online asks every ensemble model for its answer to each record, then
// applies the consensus rule.
func (f *state) online(ctx context.Context, chunk []item) ([]item, error) {
	for i := range chunk {
		it := &chunk[i]
		if !it.alive() {
			continue
		}
		f.calls.Add(int64(len(f.ens.Models)))
		answers, err := f.ens.Ask(ctx, f.opts.Executor, 0, "filter", it.seq, it.rec.Instruction, it.rec.Input)
		if err != nil {
			if ctx.Err() != nil {
				return chunk, ctx.Err()
			}
			return chunk, fmt.Errorf("ensemble step, %s: %w", it.where(), err)
		}
		cands := append([]string{it.rec.Output}, answers...)
		if f.deferred() {
			f.measure(it, StageEnsemble, cands, f.ens.Names())
			if err := f.grade(ctx, it); err != nil {
				return chunk, err
			}
			continue
		}
		f.decide(it, StageEnsemble, cands, f.ens.Names())
	}
	return chunk, nil
}

// deferred reports whether the consensus decision waits for the ordered
// writer: the weighted and judge rules, whose weights come from the
// records before, and the reference rule when outputs the heuristics
// reject must take no part (the reference rule proper, kept exact for
// the reference reproduction, decides at once).
func (f *state) deferred() bool {
	c := f.opts.Consensus
	return (c.Rule != "" && c.Rule != filter.RuleReference) || c.RejectRepetitive || f.opts.DropEmptyPick
}

// measure screens and scores it's candidates; write decides in order.
func (f *state) measure(it *item, stage string, cands, names []string) {
	texts := make([]filter.Candidate, len(cands))
	for i, c := range cands {
		texts[i] = filter.Candidate{Text: c}
	}
	it.agr = filter.Measure(texts, f.opts.Consensus)
	it.stage, it.compared, it.names = stage, cands, names
}

// grade has the judge grade it's candidates (the judge rule only).
func (f *state) grade(ctx context.Context, it *item) error {
	if f.opts.Judge == nil || f.opts.Consensus.Rule != filter.RuleJudge {
		return nil
	}
	res, err := f.opts.Judge.Score(ctx, f.opts.Executor, it.rec.Instruction, it.rec.Input, it.agr)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("judge, %s: %w", it.where(), err)
	}
	f.judgeCalls.Add(int64(res.Calls))
	it.judge = res.Scores
	return nil
}

// settle applies the rule to a measured item, in input order (the writer
// calls it), with weights learned from the records before it (or given:
// Options.Weights).
func (f *state) settle(it *item) {
	names := append([]string{output.OwnCandidate}, it.names...)
	var v filter.Votes
	v.Judge = it.judge
	if r := f.opts.Consensus.Rule; r == filter.RuleWeighted || r == filter.RuleJudge {
		if f.opts.Weights != nil {
			v.Weights = f.opts.Weights.Weights(names)
		} else {
			v.Weights = f.rel.Weights(names)
		}
	}
	rule := f.opts.Consensus.Rule
	if rule == "" {
		rule = filter.RuleReference
	}
	d := it.agr.Select(rule, v, f.opts.Consensus)
	f.rel.Observe(names, d)
	it.decision = &d
	switch {
	case !d.Kept:
		it.drop = it.stage + "/" + string(d.Reason)
	case f.opts.MinJudge != nil && (d.Judge == nil || d.Judge[d.Pick] < *f.opts.MinJudge):
		it.drop = it.stage + "/" + string(filter.ReasonLowJudge)
	default:
		it.rec.Instruction = strings.TrimSpace(it.rec.Instruction)
		it.rec.Input = strings.TrimSpace(it.rec.Input)
		it.rec.Output = d.Output
	}
}

// decide applies the consensus rule to the candidates of it in stage.
func (f *state) decide(it *item, stage string, cands, names []string) {
	d := filter.Consensus(cands, f.opts.Consensus)
	it.decision, it.compared, it.names = &d, cands, names
	switch {
	case !d.Kept:
		it.drop = stage + "/" + string(d.Reason)
	case d.Output == "" && f.opts.DropEmptyPick:
		it.drop = stage + "/" + string(filter.ReasonEmptyPick)
	default:
		// The reference strips the instruction and the input.
		it.rec.Instruction = strings.TrimSpace(it.rec.Instruction)
		it.rec.Input = strings.TrimSpace(it.rec.Input)
		it.rec.Output = d.Output
	}
}

// write passes every item on to keep or reject, in order, and counts.
func (f *state) write(ctx context.Context, in <-chan []item, keep func(Kept) error, reject func(output.Rejected) error) error {
	for {
		chunk, ok, err := recv(ctx, in)
		if !ok {
			return err
		}
		for i := range chunk {
			it := &chunk[i]
			if it.agr != nil && it.decision == nil && it.alive() {
				f.settle(it)
			}
		}
		for i := range chunk {
			it := &chunk[i]
			if it.invalid != nil {
				f.stats.Invalid++
				key := StageInput + "/" + string(ReasonInvalid)
				if reject != nil {
					if err := reject(output.Rejected{Seq: it.seq, Reason: key, Source: it.source(), Error: it.invalid.Error()}); err != nil {
						return err
					}
				}
				continue
			}
			f.stats.Read++
			if it.drop != "" {
				f.stats.Dropped[it.drop]++
				if reject != nil {
					r := output.Rejected{
						Seq:         it.seq,
						Reason:      it.drop,
						Source:      it.source(),
						Instruction: it.orig.Instruction,
						Input:       it.orig.Input,
						Output:      it.orig.Output,
						Candidates:  it.compared,
						Meta:        f.meta(it, it.orig),
					}
					r.Meta.Source = ""
					if err := reject(r); err != nil {
						return err
					}
				}
				continue
			}
			f.stats.Kept++
			rec := it.rec
			if f.opts.Meta {
				rec.Meta = f.meta(it, rec)
			}
			if err := keep(Kept{Seq: it.seq, Source: it.source(), Record: rec}); err != nil {
				return err
			}
		}
	}
}

// meta builds the provenance of an item whose record is rec.
func (f *state) meta(it *item, rec output.Record) *output.Meta {
	m := &output.Meta{Source: it.source()}
	m.ID = recordID(rec)
	m.Type = string(seeds.TypeB)
	if strings.TrimSpace(rec.Input) != "" {
		m.Type = string(seeds.TypeA)
	}
	if it.hasNovelty {
		v := it.novelty
		m.NoveltyMax = &v
	}
	if d := it.decision; d != nil {
		m.Ensemble = it.names
		m.Consensus = pipeline.ConsensusMeta(*d)
	}
	return m
}

// recordID derives a record's UUID (version 5) from its content, so
// that filtering the same data again gives the same IDs.
func recordID(r output.Record) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("ensinstruct:filter/"+r.Instruction+"\x00"+r.Input+"\x00"+r.Output)).String()
}
