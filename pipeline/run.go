package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/seeds"
	"golang.org/x/sync/errgroup"
)

// Runner runs the Ensemble-Instruct pipeline. Build one with New, call Run
// once; Progress may be called from any goroutine while it runs.
type Runner struct {
	exec  Executor
	opts  Options
	types []*typeRun
	// reliability gathers every type's consensus decisions for the
	// report; its figures are sums, so they do not depend on the order
	// the types' decisions interleave in.
	reliability filter.Reliability
	// exclude indexes Options.Exclude, shared by the types; nil without.
	exclude *filter.Index
}

// New validates opts and returns a Runner that sends its model calls to
// exec.
func New(exec Executor, opts Options) (*Runner, error) {
	if exec == nil {
		return nil, errors.New("pipeline: nil executor")
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	r := &Runner{exec: exec, opts: opts}
	a, b := seeds.Split(opts.Seeds)
	// The exclusion set is indexed once, for both types: it is read-only
	// from here on, and a candidate is novel when it is novel against its
	// own type's entries and against it.
	if len(opts.Exclude) > 0 {
		r.exclude = filter.NewIndex()
		r.exclude.AddAll(opts.Exclude)
	}
	r.types = []*typeRun{
		newTypeRun(r, seeds.TypeA, opts.TargetA, a),
		newTypeRun(r, seeds.TypeB, opts.TargetB, b),
	}
	return r, nil
}

// Reliability returns the ensemble members' reliability figures so far:
// how often each won, answered empty or failed, and how much each agrees
// with each other.
func (r *Runner) Reliability() filter.ReliabilitySummary { return r.reliability.Summary() }

// Progress returns the counts so far, per type ("A", "B").
func (r *Runner) Progress() map[string]Counts {
	out := make(map[string]Counts, len(r.types))
	for _, t := range r.types {
		out[string(t.typ)] = t.counts.snapshot()
	}
	return out
}

// Run generates examples until every type has reached its target, the
// budget is spent, a type stalls, a model call fails or ctx is cancelled.
// It passes each kept record to sink as soon as it is decided, from a
// single goroutine, in a deterministic order: each type's records in the
// order their instructions were accepted, the two types interleaved in
// proportion to their targets. The same Options and cached responses give
// the same records in the same order, whatever order calls complete in.
//
// Run returns the final counts. The error is nil when the run ended on its
// own (targets, budget, stall: see Counts.Stop), ctx.Err() when it was
// cancelled, or the first failure.
func (r *Runner) Run(ctx context.Context, sink func(output.Record) error) (map[string]Counts, error) {
	g, gctx := errgroup.WithContext(ctx)
	outs := make([]chan emitted, len(r.types))
	for i, t := range r.types {
		outs[i] = make(chan emitted, 64)
		out := outs[i]
		g.Go(func() error { return t.run(gctx, out) })
	}
	g.Go(func() error { return r.merge(gctx, outs, sink) })
	err := g.Wait()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	for _, t := range r.types {
		t.counts.add(func(c *Counts) {
			switch {
			case c.Stop != "":
			case ctx.Err() != nil:
				c.Stop = StopInterrupted
			case err != nil:
				c.Stop = StopFailed
			}
		})
	}
	return r.Progress(), err
}

// merge interleaves the types' record streams deterministically, with the
// evidence that rides on them (see Evidence): the next
// record comes from the type that is furthest behind its share of the
// targets (ties: type A). It waits for that type even when the other has a
// record ready; a closed stream drops out.
func (r *Runner) merge(ctx context.Context, outs []chan emitted, sink func(output.Record) error) error {
	ev := r.opts.Evidence
	targets := make([]int, len(outs))
	for i, t := range r.types {
		targets[i] = t.target
	}
	done := make([]int, len(outs))
	open := make([]bool, len(outs))
	for i := range outs {
		open[i] = true
	}
	for {
		next := -1
		for i := range outs {
			if !open[i] {
				continue
			}
			// i is due before next when (done[i]+1)/targets[i] is
			// smaller, compared without division.
			if next < 0 || (done[i]+1)*targets[next] < (done[next]+1)*targets[i] {
				next = i
			}
		}
		if next < 0 {
			return nil
		}
		select {
		case e, ok := <-outs[next]:
			if !ok {
				open[next] = false
				continue
			}
			if ev != nil {
				for _, rej := range e.rejected {
					if err := ev.Rejected(rej); err != nil {
						return fmt.Errorf("writing evidence: %w", err)
					}
				}
			}
			if e.rec == nil {
				continue
			}
			if ev != nil {
				if err := ev.Kept(*e.rec, e.candidates); err != nil {
					return fmt.Errorf("writing evidence: %w", err)
				}
			}
			if err := sink(*e.rec); err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
			done[next]++
		case <-ctx.Done():
			return nil // Run reports the cancellation
		}
	}
}

// future is the result of one model call, filled in by the goroutine that
// makes it.
type future[T any] struct {
	done chan struct{}
	val  T
	err  error
}

func newFuture[T any]() *future[T] { return &future[T]{done: make(chan struct{})} }

func (f *future[T]) set(v T, err error) {
	f.val, f.err = v, err
	close(f.done)
}

// onceFlag is a flag set at most once, safe for concurrent use.
type onceFlag struct {
	once sync.Once
	ch   chan struct{}
}

func newOnceFlag() *onceFlag { return &onceFlag{ch: make(chan struct{})} }
func (f *onceFlag) set()     { f.once.Do(func() { close(f.ch) }) }
func (f *onceFlag) isSet() bool {
	select {
	case <-f.ch:
		return true
	default:
		return false
	}
}
