package pipeline

import (
	"context"
	"errors"
	"math"
	"sync"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/internal/workers"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/prompts"
	"github.com/ensinstruct/ensinstruct/seeds"
)

// typeRun is the pipeline of one task type. Three kinds of goroutine share
// it:
//   - the coordinator issues instruction requests through a sliding window,
//     consumes their results strictly in request order, and runs the
//     checks and the novelty index (the only state that depends on order);
//   - one job per accepted instruction makes the instance call and the
//     ensemble calls and applies the consensus rule;
//   - the emitter puts job outcomes back in acceptance order and sends the
//     kept records downstream.
type typeRun struct {
	r         *Runner
	opts      *Options
	typ       seeds.Type
	target    int
	seedTexts []string
	demos     int
	instrM    []llm.ModelInfo
	instM     []llm.ModelInfo
	ens       Ensemble
	counts    counter

	// Coordinator state.
	index    *filter.Index
	accepted []string
	accAfter []int // accAfter[j%Window]: len(accepted) after consuming result j

	// Shared between the coordinator and the emitter.
	mu       sync.Mutex
	pending  int // accepted instructions not yet decided
	decided  int
	kept     int
	consumed int
	notify   chan struct{}
	stop     *onceFlag
	// rel holds the reliability of the type's ensemble members, learned
	// from its decisions in acceptance order (the emitter's).
	rel filter.Reliability

	// drops are the instruction-stage rejections not yet passed to the
	// emitter, each tagged with the acceptance index of the next accepted
	// instruction: the emitter places them before that instruction's
	// outcome, an order that does not depend on timing.
	drops []taggedDrop
}

// taggedDrop is an instruction-stage rejection waiting for the emitter.
type taggedDrop struct {
	next int // len(accepted) when it was dropped
	rej  output.Rejected
}

// emitted is what a type sends downstream: a kept record (rec, nil for
// the type's last message) with the rejections decided before it.
type emitted struct {
	rec        *output.Record
	candidates []string // what rec's vote compared
	rejected   []output.Rejected
}

// novelty checks instr against the type's entries and the exclusion set:
// what one index holding both would answer, since the maximum over the
// union is the larger of the two maxima.
func (t *typeRun) novelty(instr string) filter.Novelty {
	nov := t.index.Check(instr, t.opts.noveltyThreshold())
	if x := t.r.exclude; x != nil {
		ex := x.Check(instr, t.opts.noveltyThreshold())
		nov = filter.Novelty{Novel: nov.Novel && ex.Novel, Max: max(nov.Max, ex.Max), Exact: nov.Exact && ex.Exact}
	}
	return nov
}

func newTypeRun(r *Runner, typ seeds.Type, target int, tasks []seeds.Task) *typeRun {
	o := &r.opts
	t := &typeRun{
		r: r, opts: o, typ: typ, target: target,
		demos:    o.DemosA,
		index:    filter.NewIndex(),
		accAfter: make([]int, o.Window),
		notify:   make(chan struct{}, 1),
		stop:     newOnceFlag(),
	}
	if typ == seeds.TypeB {
		t.demos = o.DemosB
	}
	for _, s := range tasks {
		t.seedTexts = append(t.seedTexts, s.Instruction)
		t.index.Add(s.Instruction)
	}
	t.ens = Ensemble{Sampling: o.EnsembleSampling, Consensus: o.Consensus, Judge: o.judge()}
	// Outputs the heuristics would reject take no part in the vote.
	t.ens.Consensus.RejectRepetitive = o.Consensus.RejectRepetitive || !o.Instance.AllowRepetition
	for _, m := range o.Models {
		if m.HasRole(llm.RoleInstructions) {
			t.instrM = append(t.instrM, m)
		}
		if m.HasRole(llm.RoleInstances) {
			t.instM = append(t.instM, m)
		}
		if m.HasRole(llm.RoleEnsemble) {
			t.ens.Models = append(t.ens.Models, m)
		}
	}
	t.counts.c.Target = target
	return t
}

// finish records why the type stops (the first reason wins) and tells the
// coordinator to issue nothing more.
func (t *typeRun) finish(reason string) {
	t.counts.add(func(c *Counts) {
		if c.Stop == "" {
			c.Stop = reason
		}
	})
	t.stop.set()
}

func (t *typeRun) signal() {
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// outcome is the fate of accepted instruction m.
type outcome struct {
	m          int
	rec        output.Record
	kept       bool
	unfinished bool          // a call was refused by the budget
	stage      string        // where a dropped example was dropped
	reason     filter.Reason // and why
	rej        output.Rejected
	candidates []string // of a kept example
	vote       *vote    // an example the consensus rule has yet to decide
}

// run runs the type's pipeline. It closes out only when the type has
// finished on its own (target, stall, budget): the merge takes a closed
// stream for a finished type and goes on with the other one, which for a
// type that failed or was cancelled would write records ahead of their
// turn. A failed run's output must be a prefix of the uninterrupted one.
func (t *typeRun) run(ctx context.Context, out chan<- emitted) (err error) {
	defer func() {
		if err == nil && ctx.Err() == nil {
			close(out)
		}
	}()
	if t.target <= 0 {
		t.finish(StopTarget)
		return nil
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := workers.WithContext(tctx)
	outcomes := make(chan outcome, t.opts.MaxPending)
	var jobs sync.WaitGroup
	// Every goroutine below returns only real failures: work abandoned
	// because the context was cancelled (target reached, stall, another
	// goroutine's failure, or the caller) returns nil, so that the error
	// Wait reports is the one that ended the run.
	g.Go(func() error { return t.emit(gctx, outcomes, out, cancel) })
	g.Go(func() error {
		err := t.coordinate(gctx, g, outcomes, &jobs)
		if err != nil {
			cancel() // stop the jobs in flight rather than wait for them
		}
		jobs.Wait()
		close(outcomes)
		return err
	})
	return g.Wait()
}

// emit receives job outcomes, restores acceptance order and sends kept
// records downstream, stopping at the target.
func (t *typeRun) emit(ctx context.Context, outcomes <-chan outcome, out chan<- emitted, cancel func()) error {
	held := map[int]outcome{}
	next, dry := 0, 0
	emitting := true
	var evidence []output.Rejected // decided since the last kept record
	flush := func(all bool) {
		// The type's last message: the rejections decided after its last
		// kept record. all adds the instruction-stage ones that no
		// accepted instruction followed (only when the coordinator
		// stopped on its own, so that they do not depend on timing).
		if all {
			evidence = append(evidence, t.takeDrops(-1)...)
		}
		if len(evidence) > 0 {
			select {
			case out <- emitted{rejected: evidence}:
			case <-ctx.Done():
			}
		}
	}
	for {
		var o outcome
		var ok bool
		select {
		case o, ok = <-outcomes:
		case <-ctx.Done():
			return nil
		}
		if !ok {
			if emitting {
				flush(t.counts.snapshot().Stop == StopStalled)
			}
			return nil
		}
		held[o.m] = o
		for emitting {
			o, ok := held[next]
			if !ok {
				break
			}
			delete(held, next)
			next++
			evidence = append(evidence, t.takeDrops(o.m)...)
			if o.vote != nil {
				t.settle(&o)
			}
			if o.unfinished {
				// The budget stopped this example half way; later ones
				// cannot be emitted without breaking the order. Keep
				// draining so that calls already paid for finish and are
				// cached for the next run.
				t.finish(StopBudget)
				emitting = false
				flush(false)
				break
			}
			t.mu.Lock()
			t.pending--
			t.decided++
			if o.kept {
				t.kept++
			}
			kept := t.kept
			t.mu.Unlock()
			t.counts.add(func(c *Counts) {
				c.Decided++
				if o.kept {
					c.Kept++
				}
			})
			if !o.kept {
				t.counts.drop(o.stage, o.reason)
				evidence = append(evidence, o.rej)
			}
			t.signal()
			if !o.kept {
				if dry++; dry >= t.opts.StallLimit {
					t.opts.Logger.Warn("no example kept in a row; stopping this type",
						"type", string(t.typ), "decided", dry)
					t.finish(StopStalled)
					cancel()
					flush(false)
					return nil
				}
				continue
			}
			dry = 0
			rec := o.rec
			select {
			case out <- emitted{rec: &rec, candidates: o.candidates, rejected: evidence}:
				evidence = nil
			case <-ctx.Done():
				return nil
			}
			if kept >= t.target {
				t.finish(StopTarget)
				cancel()
				return nil
			}
		}
	}
}

// instrCall is an instruction request in flight.
type instrCall struct {
	i     int
	model llm.ModelInfo
	f     *future[llm.Response]
}

// coordinate runs the instruction stage: a window of requests in flight,
// results consumed in request order.
func (t *typeRun) coordinate(ctx context.Context, g *workers.Group, outcomes chan<- outcome, jobs *sync.WaitGroup) error {
	var queue []*instrCall
	issued, dry := 0, 0
	for {
		for len(queue) < t.opts.Window && !t.stop.isSet() && t.wantMore(len(queue)) {
			if t.budgetSpent() {
				t.finish(StopBudget)
				break
			}
			queue = append(queue, t.launchInstruction(ctx, g, issued))
			issued++
		}
		if len(queue) == 0 {
			if t.stop.isSet() {
				return nil
			}
			select {
			case <-t.notify:
				continue
			case <-t.stop.ch:
				return nil
			case <-ctx.Done():
				return nil
			}
		}
		head := queue[0]
		select {
		case <-head.f.done:
		case <-ctx.Done():
			return nil
		}
		queue = queue[1:]
		if head.f.err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(head.f.err, ErrBudget) {
				// Results after this one cannot be consumed without
				// breaking the order; calls in flight finish and are
				// cached for the next run.
				t.finish(StopBudget)
				return nil
			}
			return head.f.err
		}
		if t.consume(ctx, g, head, outcomes, jobs) {
			dry = 0
		} else if dry++; dry >= t.opts.StallLimit {
			t.opts.Logger.Warn("no instruction accepted in a row; stopping this type",
				"type", string(t.typ), "requests", dry)
			t.finish(StopStalled)
			return nil
		}
		if t.stop.isSet() && t.counts.snapshot().Stop == StopBudget {
			return nil // calls still in flight finish and are cached
		}
	}
}

// wantMore decides whether another instruction request is worth issuing:
// would the examples in flight, and the instructions the queued requests
// are expected to give, reach the target at the yield seen so far, even
// two standard deviations short of the expected count (each example kept
// with probability yield), but never more than half short? The margin
// keeps the end of a run from being serial: without it, every rejection
// near the target costs a fresh instruction, instance and ensemble round,
// one latency each, with few calls in flight. The cap bounds what it
// costs at a low yield, where two deviations would have many times the
// examples needed in flight. A batch run goes without the margin: its
// window does not bound a round, so the margin would enlarge every round,
// not only the last (15% more requests for 200 examples on the fake batch
// server, in as many jobs). It only paces the work; it never changes what
// a request contains.
func (t *typeRun) wantMore(queued int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending >= t.opts.MaxPending {
		return false
	}
	need := t.target - t.kept
	if need <= 0 {
		return false
	}
	acceptRate := float64(len(t.accepted)+1) / float64(t.consumed+2)
	yield := float64(t.kept+1) / float64(t.decided+2)
	expect := (float64(t.pending) + float64(queued)*acceptRate) * yield
	if t.opts.batch() {
		return expect < float64(need)
	}
	short := max(expect-2*math.Sqrt(expect*(1-yield)), expect/2)
	return short < float64(need)
}

func (t *typeRun) budgetSpent() bool {
	return t.opts.Budget != nil && t.opts.Budget.Exhausted()
}

// launchInstruction builds request i and starts it. The prompt shows
// demonstrations drawn by the RNG of request i: seeds of this type and up
// to MachineDemos instructions accepted before result i-Window was
// consumed, so that what request i contains does not depend on timing.
func (t *typeRun) launchInstruction(ctx context.Context, g *workers.Group, i int) *instrCall {
	rng := newRNG(t.opts.Seed, string(t.typ), "instruction", i)
	pool := 0
	if w := t.opts.Window; i >= w {
		pool = t.accAfter[(i-w)%w]
	}
	nMachine := min(t.opts.machineDemos(), pool, t.demos)
	demos := make([]string, 0, t.demos)
	for _, k := range rng.sample(pool, nMachine) {
		demos = append(demos, t.accepted[k])
	}
	for _, k := range rng.sample(len(t.seedTexts), t.demos-len(demos)) {
		demos = append(demos, t.seedTexts[k])
	}
	rng.shuffle(len(demos), func(a, b int) { demos[a], demos[b] = demos[b], demos[a] })
	model := rng.pickWeighted(t.instrM)
	p := prompts.InstructionPrompt(prompts.Style(model.Style), t.typ, demos)
	req := toRequest(p, t.opts.InstructionSampling, rng)

	c := &instrCall{i: i, model: model, f: newFuture[llm.Response]()}
	t.counts.add(func(c *Counts) { c.InstructionRequests++ })
	g.Go(func() error {
		resp, err := t.r.exec.Do(ctx, model.Name, req, i)
		c.f.set(resp, err)
		return nil // the coordinator reports the error, in order
	})
	return c
}

// consume applies the instruction checks and the novelty index to the
// result of one instruction request and, when it is accepted, starts its
// job. It reports whether the instruction was accepted.
func (t *typeRun) consume(ctx context.Context, g *workers.Group, c *instrCall, outcomes chan<- outcome, jobs *sync.WaitGroup) bool {
	accepted := false
	defer func() {
		t.mu.Lock()
		t.accAfter[t.consumed%t.opts.Window] = len(t.accepted)
		t.consumed++
		t.mu.Unlock()
	}()
	instr, ok := prompts.ParseInstruction(c.f.val.Text, prompts.Style(c.model.Style))
	if !ok {
		t.dropInstruction(c, filter.ReasonUnparsable, "", nil)
		return accepted
	}
	if r := t.opts.Checks.Check(instr); r != "" {
		t.dropInstruction(c, r, instr, nil)
		return accepted
	}
	nov := t.novelty(instr)
	if !nov.Novel {
		t.dropInstruction(c, filter.ReasonNotNovel, instr, &nov.Max)
		return accepted
	}
	t.index.Add(instr)
	t.mu.Lock()
	m := len(t.accepted)
	t.accepted = append(t.accepted, instr)
	t.pending++
	t.mu.Unlock()
	t.counts.add(func(c *Counts) { c.InstructionsAccepted++ })
	accepted = true

	jobs.Add(1)
	g.Go(func() error {
		defer jobs.Done()
		o, err := t.process(ctx, m, instr, c.model.Name, nov.Max)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case outcomes <- o:
			return nil
		case <-ctx.Done():
			return nil
		}
	})
	return accepted
}

// process runs the instance and ensemble stages and the consensus rule
// for accepted instruction m.
func (t *typeRun) process(ctx context.Context, m int, instr, instrModel string, novelty float64) (outcome, error) {
	o := outcome{m: m}
	rng := newRNG(t.opts.Seed, string(t.typ), "instance", m)
	model := rng.pickWeighted(t.instM)
	style := prompts.Style(model.Style)
	req := toRequest(prompts.InstancePrompt(style, t.typ, instr), t.opts.InstanceSampling, rng)
	if t.budgetSpent() {
		o.unfinished = true
		return o, nil
	}
	t.counts.add(func(c *Counts) { c.InstanceRequests++ })
	resp, err := t.r.exec.Do(ctx, model.Name, req, 0)
	if errors.Is(err, ErrBudget) {
		o.unfinished = true
		return o, nil
	}
	if err != nil {
		return o, err
	}

	meta := &output.Meta{
		ID:               recordID(t.opts.RunID, t.typ, m),
		Type:             string(t.typ),
		InstructionModel: instrModel,
		InstanceModel:    model.Name,
		NoveltyMax:       &novelty,
	}
	parse := prompts.FindInstance
	if t.opts.CompatParser {
		parse = func(reply string, typ seeds.Type, _ string) (string, string, bool) {
			return prompts.ParseInstanceCompat(reply, typ)
		}
	}
	input, out, found := parse(resp.Text, t.typ, instr)
	reason := filter.ReasonUnparsable
	if found {
		reason = filter.CheckInstance(t.typ, instr, input, out, t.opts.Instance)
	}
	if reason != "" {
		o.stage, o.reason = StageInstance, reason
		o.rej = output.Rejected{Seq: m, Reason: StageInstance + "/" + string(reason),
			Instruction: instr, Input: input, Output: out, Meta: meta}
		if !found {
			o.rej.Raw = resp.Text
		}
		return o, nil
	}
	t.counts.add(func(c *Counts) { c.InstancesValid++ })

	if t.budgetSpent() {
		o.unfinished = true
		return o, nil
	}
	t.counts.add(func(c *Counts) { c.EnsembleCalls += len(t.ens.Models) })
	answers, err := t.ens.Ask(ctx, t.r.exec, t.opts.Seed, string(t.typ), m, instr, input)
	if errors.Is(err, ErrBudget) {
		o.unfinished = true
		return o, nil
	}
	if err != nil {
		return o, err
	}

	meta.Ensemble = t.ens.Names()
	v := &vote{agr: t.ens.Measure(out, answers), instr: instr, input: input, own: out,
		cands: append([]string{out}, answers...), meta: meta}
	res, err := t.ens.Grade(ctx, t.r.exec, instr, input, v.agr)
	if errors.Is(err, ErrBudget) {
		o.unfinished = true
		return o, nil
	}
	if err != nil {
		return o, err
	}
	v.judge = res.Scores
	t.counts.add(func(c *Counts) { c.JudgeCalls += res.Calls })
	o.vote = v
	return o, nil
}
