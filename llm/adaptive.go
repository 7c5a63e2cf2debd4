package llm

import (
	"errors"
	"math"
	"slices"
	"sync"
	"time"
)

// Ceilings of max_concurrent: auto, applied by NewPool when an adaptive
// endpoint sets no max.
const (
	// DefaultOllamaAutoCeiling is the ceiling for an Ollama endpoint. An
	// Ollama server runs OLLAMA_NUM_PARALLEL requests at once (1 by
	// default) and queues up to OLLAMA_MAX_QUEUE (512) more, so the
	// controller, not a 503, finds the real capacity; 16 leaves room for a
	// server configured with more parallel slots.
	DefaultOllamaAutoCeiling = 16
	// DefaultOpenAIAutoCeiling is the ceiling for an OpenAI-compatible
	// endpoint: vLLM and llama.cpp servers batch up to their max_num_seqs
	// or --parallel slots, hosted APIs answer 429 past their limits. Set
	// a higher max for a large vLLM deployment.
	DefaultOpenAIAutoCeiling = 64
)

// Tuning of the adaptive limit.
const (
	// autoStart is where an adaptive limit starts: one call at a time,
	// which every server can take and which measures its unloaded
	// latency (a first window at a higher limit would take the queueing
	// of a server that runs one call at a time for its unloaded latency).
	autoStart = 1
	// autoWindow is the fewest latencies one decision looks at; a window
	// also holds at least one latency per slot of the limit, so that it
	// spans about one round trip of the whole limit.
	autoWindow = 16
	// autoProbeEvery is the number of windows after which, if none showed
	// a new lowest latency, one window runs at the estimated capacity of
	// the server to measure its unloaded latency again.
	autoProbeEvery = 40
	// autoMaxSlowdown bounds the latency the limit may cost: a window
	// slower than this many times the unloaded latency lowers the limit,
	// whatever the queue estimate, so that a queue that is small in calls
	// but long in time (a server that runs one call at a time) cannot
	// bring callers near their timeout.
	autoMaxSlowdown = 1.5
)

// adaptiveLimit is the controller behind max_concurrent: auto. It sets the
// concurrency limit of one endpoint from what the endpoint's calls show,
// in the manner of TCP Vegas (and Netflix's concurrency-limits
// VegasLimit): the latency of a server that queues work it cannot run
// rises in proportion to the queue, so with the unloaded latency b and the
// latency l measured at load n (calls in flight), about n·(1 − b/l) calls
// are waiting in the server's queue. The controller keeps that queue
// between α = max(1, 3·log10 limit) and β = max(2, 6·log10 limit) calls: a
// small queue means the server never idles between calls, a bounded one
// that callers never wait long enough to time out.
//
// It decides once per window: the successful calls started since the last
// change of the limit, at least autoWindow of them (a quarter of that in
// slow start, so that the start is quick) and at least one per slot. From the window's median latency l (the median, because replies
// vary in length) and mean load n:
//
//   - the unloaded latency b is the lowest window median seen (or the
//     last one at limit 1, where none of our calls queue), measured
//     again by a probe (one window at the estimated capacity n·b/l, which
//     drains the queue) when autoProbeEvery windows have not lowered it,
//     so that b follows a server that became slower for good;
//   - queue > β, or l > autoMaxSlowdown·b, in two windows in a row: the
//     limit drops halfway to the estimated capacity n·b/l plus α (by at
//     most a quarter);
//   - the window did not use the whole limit: the limit holds (callers,
//     not the server, were the bound);
//   - queue < α/2 while still in slow start: the limit doubles (the
//     start, before the first sign of a queue);
//   - queue < α: the limit grows by one slot per round trip the window
//     spanned (autoWindow/limit, at least 1, at most doubling), but,
//     once a queue shows, not past autoMaxSlowdown times the estimated
//     capacity;
//   - otherwise it holds.
//
// A 429, a 5xx or a timeout halves the limit at once and ends slow start.
// Only a failure of a call started under the current limit or a lower one
// counts, so that a burst of failures from one overload halves the limit
// once. The limit stays within [1, ceiling].
//
// Every change of the limit goes to apply, under the controller's lock, so
// that changes reach the semaphore in the order they were made. An
// adaptiveLimit is safe for concurrent use; build it with
// newAdaptiveLimit.
type adaptiveLimit struct {
	ceiling    int
	window     int // fewest latencies a decision needs
	probeEvery int // windows without a new lowest latency before a probe
	apply      func(limit int)

	mu        sync.Mutex
	limit     int
	epoch     uint64 // counts changes of the limit
	slowStart bool
	baseline  time.Duration // the unloaded latency b; 0 = none yet
	stale     int           // windows since baseline was last set
	probeBack int           // > 0 while probing: the limit to return to
	slow      int           // 1 after a slow window that changed nothing yet

	samples []time.Duration // latencies of the window
	sumLoad int
	maxLoad int

	last     time.Duration // median latency of the last window
	backoffs int64
}

// newAdaptiveLimit returns a controller starting at autoStart; apply
// receives every later change of the limit.
func newAdaptiveLimit(ceiling int, apply func(int)) *adaptiveLimit {
	ceiling = max(ceiling, 1)
	return &adaptiveLimit{
		ceiling: ceiling, window: autoWindow, probeEvery: autoProbeEvery, apply: apply,
		limit: min(autoStart, ceiling), slowStart: true,
	}
}

// ticket is what the controller needs to know about a call when it ends.
type ticket struct {
	epoch uint64
	limit int // the limit when the call started
	load  int // calls in flight when it started, itself included
	start time.Time
}

// outcome is what a call's end tells the controller.
type outcome int

const (
	outcomeIgnore   outcome = iota // no evidence about the server's load
	outcomeOK                      // served: its latency counts
	outcomeOverload                // 429, 5xx or timeout
)

// outcomeOf classifies a call's error.
func outcomeOf(err error) outcome {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, ErrRateLimited), errors.Is(err, ErrServer), errors.Is(err, ErrTimeout):
		return outcomeOverload
	}
	return outcomeIgnore
}

// current returns the limit.
func (a *adaptiveLimit) current() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.limit
}

// begin records the start of a call, with load calls in flight (itself
// included).
func (a *adaptiveLimit) begin(now time.Time, load int) ticket {
	a.mu.Lock()
	defer a.mu.Unlock()
	return ticket{epoch: a.epoch, limit: a.limit, load: load, start: now}
}

// end takes the outcome of the call t describes.
func (a *adaptiveLimit) end(t ticket, now time.Time, o outcome) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch o {
	case outcomeOverload:
		at, next := a.limit, a.limit/2
		if a.probeBack > 0 {
			// Probing at the estimated capacity: the cut is from the
			// limit the probe would have returned to.
			at, next = a.probeBack, min(a.probeBack/2, a.limit)
		}
		if t.limit > at {
			return // started under a higher limit, already cut
		}
		a.slowStart = false
		a.probeBack = 0
		if next = max(next, 1); next < at {
			a.backoffs++
		}
		a.set(next)
	case outcomeOK:
		if t.epoch != a.epoch {
			return // started under another limit
		}
		a.samples = append(a.samples, now.Sub(t.start))
		a.sumLoad += t.load
		a.maxLoad = max(a.maxLoad, t.load)
		w := a.window
		if a.slowStart {
			w /= 4
		}
		if len(a.samples) >= max(a.limit, w) {
			a.decide()
		}
	}
}

// decide ends a window. Called with mu held.
func (a *adaptiveLimit) decide() {
	slices.Sort(a.samples)
	l := a.samples[len(a.samples)/2]
	load := float64(a.sumLoad) / float64(len(a.samples))
	saturated := a.maxLoad >= a.limit
	a.samples, a.sumLoad, a.maxLoad = a.samples[:0], 0, 0
	a.last = l

	if a.probeBack > 0 {
		// The probe drained the queue: l is the unloaded latency now.
		a.baseline, a.stale = l, 0
		back := a.probeBack
		a.probeBack = 0
		a.set(back)
		return
	}
	if a.baseline <= 0 || l < a.baseline || a.limit == 1 {
		// (One call at a time queues behind none of ours: its latency is
		// the unloaded one even if higher than before.)
		a.baseline, a.stale = l, 0
	} else {
		a.stale++
	}
	ratio := 1.0 // b/l
	if l > 0 {
		ratio = float64(a.baseline) / float64(l)
	}
	if saturated {
		// Calls that started just after a change saw fewer in flight
		// than the limit keeps for the rest of the window.
		load = float64(a.limit)
	}
	queue := load * (1 - ratio)
	lim := float64(a.limit)
	alpha, beta := max(1, 3*math.Log10(lim)), max(2, 6*math.Log10(lim))
	slow := queue > beta || ratio < 1/autoMaxSlowdown
	if !slow {
		a.slow = 0
	}
	next := a.limit
	switch {
	case slow && a.slow == 0:
		// One slow window may be a stall of the machine or a run of long
		// replies; a real queue shows again in the next.
		a.slow = 1
	case slow:
		// Halfway to the estimated capacity plus α, for the same reason.
		a.slow = 0
		a.slowStart = false
		target := max(a.limit/2, int(math.Round(load*ratio+alpha)))
		next = min(a.limit-1, a.limit-(a.limit-target+1)/2)
	case !saturated:
	case a.slowStart && queue < alpha/2:
		next = 2 * a.limit
	case queue < alpha:
		// One slot per round trip (a window of autoWindow calls at a
		// small limit spans several), as long as the latency the
		// estimated capacity predicts stays within autoMaxSlowdown.
		a.slowStart = false
		grown := min(2*a.limit, a.limit+max(1, a.window/a.limit))
		bound := int(load * ratio * autoMaxSlowdown)
		if queue < alpha/2 {
			// No queue to speak of: the capacity may be any higher.
			bound = max(bound, a.limit+1)
		}
		next = max(a.limit, min(grown, bound))
	default:
		a.slowStart = false
	}
	next = min(max(next, 1), a.ceiling)
	if next == a.limit && a.stale >= a.probeEvery {
		a.stale = 0
		if capacity := int(load * ratio); capacity < a.limit {
			a.probeBack = a.limit
			next = max(capacity, 1)
		}
	}
	a.set(next)
}

// set changes the limit. Called with mu held.
func (a *adaptiveLimit) set(n int) {
	n = min(max(n, 1), a.ceiling)
	if n == a.limit {
		return
	}
	a.limit = n
	a.epoch++
	a.slow = 0
	a.samples, a.sumLoad, a.maxLoad = a.samples[:0], 0, 0
	if a.apply != nil {
		a.apply(n)
	}
}

// adaptiveState is a snapshot of the controller.
type adaptiveState struct {
	limit    int
	baseline time.Duration
	last     time.Duration
	backoffs int64
}

func (a *adaptiveLimit) state() adaptiveState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return adaptiveState{limit: a.limit, baseline: a.baseline, last: a.last, backoffs: a.backoffs}
}
