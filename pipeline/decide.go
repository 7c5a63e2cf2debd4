package pipeline

import (
	"strconv"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/prompts"
	"github.com/ensinstruct/ensinstruct/seeds"
	"github.com/google/uuid"
)

// dropInstruction counts an instruction-stage drop and keeps its
// evidence for the emitter.
func (t *typeRun) dropInstruction(c *instrCall, r filter.Reason, instr string, novelty *float64) {
	t.counts.drop(StageInstruction, r)
	if t.opts.Evidence == nil {
		return
	}
	rej := output.Rejected{
		Seq:         c.i,
		Reason:      StageInstruction + "/" + string(r),
		Instruction: instr,
		Meta:        &output.Meta{Type: string(t.typ), InstructionModel: c.model.Name, NoveltyMax: novelty},
	}
	if instr == "" {
		rej.Raw = c.f.val.Text
	}
	t.mu.Lock()
	t.drops = append(t.drops, taggedDrop{next: len(t.accepted), rej: rej})
	t.mu.Unlock()
}

// takeDrops removes and returns the instruction-stage drops made before
// accepted instruction m (all of them for m < 0).
func (t *typeRun) takeDrops(m int) []output.Rejected {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for n < len(t.drops) && (m < 0 || t.drops[n].next <= m) {
		n++
	}
	if n == 0 {
		return nil
	}
	out := make([]output.Rejected, n)
	for i := range out {
		out[i] = t.drops[i].rej
	}
	t.drops = t.drops[n:]
	return out
}

// vote is an example measured for the consensus rule, waiting for its
// turn: the rule is applied in acceptance order (settle), so that weights
// learned from earlier examples make the same decisions every run.
type vote struct {
	agr               *filter.Agreement
	judge             []float64
	instr, input, own string
	cands             []string
	meta              *output.Meta
}

// settle applies the consensus rule to o's vote, in acceptance order
// (the emitter calls it), and fills in o's fate.
func (t *typeRun) settle(o *outcome) {
	v := o.vote
	d := t.ens.Select(v.agr, &t.rel, v.judge)
	t.r.reliability.Observe(t.ens.candidateNames(), d)
	v.meta.Consensus = ConsensusMeta(d)
	if d.Kept {
		o.kept = true
		o.rec = output.Record{Instruction: v.instr, Input: v.input, Output: d.Output, Meta: v.meta}
		o.candidates = v.cands
		return
	}
	o.stage, o.reason = StageConsensus, d.Reason
	o.rej = output.Rejected{Seq: o.m, Reason: o.stage + "/" + string(o.reason),
		Instruction: v.instr, Input: v.input, Output: v.own, Candidates: v.cands, Meta: v.meta}
}

// recordID derives a record's UUID (version 5) from the run and the
// record's place in it, so that re-running writes the same IDs.
func recordID(runID string, typ seeds.Type, m int) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("ensinstruct:"+runID+"/"+string(typ)+"/"+strconv.Itoa(m))).String()
}

// toRequest turns a rendered prompt and a stage's sampling settings into a
// model request. Sampled requests carry a seed from rng so that backends
// that honour seeds can reproduce them.
func toRequest(p prompts.Prompt, s Sampling, rng rng) llm.Request {
	req := llm.Request{
		Prompt:      p.Text,
		MaxTokens:   s.MaxTokens,
		Temperature: s.Temperature,
		TopP:        s.TopP,
		TopK:        s.TopK,
		Stop:        p.Stop,
	}
	for _, m := range p.Messages {
		req.Messages = append(req.Messages, llm.Message{Role: m.Role, Content: m.Content})
	}
	if s.Temperature > 0 {
		seed := rng.seedValue()
		req.Seed = &seed
	}
	return req
}
