package llm

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// endpoint holds the limits shared by every model one server serves: a
// concurrency limit that hands free slots to the endpoint's models in turn
// (fixed, or set by an adaptive controller), request and token rate
// limiters, a pause set by Retry-After, and the call timeout.
type endpoint struct {
	url     string // without credentials
	cfg     EndpointConfig
	slots   *fairSem
	auto    *adaptiveLimit // nil = a fixed max_concurrent
	rpm     *rate.Limiter  // nil = unlimited
	tpm     *rate.Limiter  // nil = unlimited
	paused  atomic.Int64   // unix nanoseconds until which no request starts
	members int            // models on this endpoint (queue indexes)
}

func newEndpoint(url string, cfg EndpointConfig, members int) *endpoint {
	e := &endpoint{url: url, cfg: cfg, members: members}
	if cfg.AutoConcurrency {
		e.auto = newAdaptiveLimit(cfg.MaxConcurrent, func(n int) { e.slots.setLimit(n) })
		e.slots = newFairSem(e.auto.current(), members)
	} else {
		e.slots = newFairSem(cfg.MaxConcurrent, members)
	}
	if cfg.RequestsPerMinute > 0 {
		// Burst 1: requests are spaced evenly rather than sent in bursts
		// that a server's shorter internal window might reject.
		e.rpm = rate.NewLimiter(rate.Limit(cfg.RequestsPerMinute/60), 1)
	}
	if cfg.TokensPerMinute > 0 {
		e.tpm = rate.NewLimiter(rate.Limit(float64(cfg.TokensPerMinute)/60), cfg.TokensPerMinute)
	}
	return e
}

// begin marks the start of a backend call that holds a slot and has
// passed the rate limiters.
func (e *endpoint) begin(now time.Time) ticket {
	if e.auto == nil {
		return ticket{}
	}
	_, used, _ := e.slots.state()
	return e.auto.begin(now, used)
}

// end returns the slot of the call begin started and, for an adaptive
// limit, tells the controller how the call went. A call whose caller gave
// up (ctx done) tells nothing: its "timeout" may be the caller's deadline.
func (e *endpoint) end(ctx context.Context, t ticket, now time.Time, err error) {
	if e.auto != nil {
		o := outcomeOf(err)
		if ctx.Err() != nil {
			o = outcomeIgnore
		}
		e.auto.end(t, now, o)
	}
	e.slots.release()
}

// waitPause waits until a pause requested by a Retry-After has passed.
func (e *endpoint) waitPause(ctx context.Context, now func() time.Time, sleep func(context.Context, time.Duration) error) error {
	for {
		until := e.paused.Load()
		if until == 0 {
			return nil
		}
		d := time.Duration(until - now().UnixNano())
		if d <= 0 {
			return nil
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// pause stops new requests from starting before t (it never shortens a
// pause already set).
func (e *endpoint) pause(t time.Time) {
	n := t.UnixNano()
	for {
		cur := e.paused.Load()
		if cur >= n || e.paused.CompareAndSwap(cur, n) {
			return
		}
	}
}

// waitRate takes one request and tokens tokens from the rate limiters,
// sleeping until both allow it. On cancellation the reservations are given
// back.
func (e *endpoint) waitRate(ctx context.Context, tokens int, now func() time.Time, sleep func(context.Context, time.Duration) error) error {
	if e.rpm == nil && e.tpm == nil {
		return nil
	}
	t := now()
	var wait time.Duration
	var rr, tr *rate.Reservation
	if e.rpm != nil {
		rr = e.rpm.ReserveN(t, 1)
		wait = rr.DelayFrom(t)
	}
	if e.tpm != nil {
		// A request larger than a minute's budget waits for a full bucket.
		tr = e.tpm.ReserveN(t, min(max(tokens, 1), e.tpm.Burst()))
		wait = max(wait, tr.DelayFrom(t))
	}
	if wait <= 0 {
		return nil
	}
	if err := sleep(ctx, wait); err != nil {
		c := now()
		if rr != nil {
			rr.CancelAt(c)
		}
		if tr != nil {
			tr.CancelAt(c)
		}
		return err
	}
	return nil
}

// chargeTokens takes extra tokens after a call whose reply used more than
// the estimate, delaying later requests rather than this one.
func (e *endpoint) chargeTokens(extra int, now time.Time) {
	if e.tpm == nil || extra <= 0 {
		return
	}
	e.tpm.ReserveN(now, min(extra, e.tpm.Burst()))
}

// estimateTokens is the token cost charged before a call: the prompt at 4
// bytes a token, 4 tokens of overhead per message, plus MaxTokens (as
// hosted APIs count it).
func estimateTokens(req Request) int {
	n := len(req.Prompt)
	for _, m := range req.Messages {
		n += len(m.Content) + len(m.Role) + 16
	}
	return int(math.Ceil(float64(n)/4)) + req.MaxTokens
}

// fairSem is a counting semaphore whose waiters queue per model (an index
// in [0, queues)) and are served round-robin across models, FIFO within a
// model: a model with a deep backlog cannot hold back another model on the
// same endpoint. Acquire honours its context. Its limit can change while
// slots are held: a higher limit hands the new slots to waiters at once, a
// lower one lets calls in flight finish and grants no slot until fewer
// than the new limit are held.
type fairSem struct {
	mu      sync.Mutex
	limit   int
	used    int
	queues  [][]*semWaiter
	waiting int
	next    int // the queue served first on the next grant
}

type semWaiter struct {
	ready   chan struct{}
	granted bool // set under mu when a slot was handed to this waiter
}

func newFairSem(n, queues int) *fairSem {
	return &fairSem{limit: n, queues: make([][]*semWaiter, max(queues, 1))}
}

// acquire takes a slot for queue q, waiting for one if none is free.
func (s *fairSem) acquire(ctx context.Context, q int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.used < s.limit && s.waiting == 0 {
		s.used++
		s.mu.Unlock()
		return nil
	}
	w := &semWaiter{ready: make(chan struct{})}
	s.queues[q] = append(s.queues[q], w)
	s.waiting++
	s.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		if w.granted {
			// The slot arrived as we gave up: pass it on.
			s.mu.Unlock()
			s.release()
			return ctx.Err()
		}
		qs := s.queues[q]
		for i, x := range qs {
			if x == w {
				copy(qs[i:], qs[i+1:])
				qs[len(qs)-1] = nil
				s.queues[q] = qs[:len(qs)-1]
				break
			}
		}
		s.waiting--
		s.mu.Unlock()
		return ctx.Err()
	}
}

// release returns a slot, handing it to the next waiter in round-robin
// order if the limit allows.
func (s *fairSem) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used--
	s.grant()
}

// setLimit changes the number of slots.
func (s *fairSem) setLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = n
	s.grant()
}

// state returns the limit, the slots held and the callers waiting.
func (s *fairSem) state() (limit, used, waiting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit, s.used, s.waiting
}

// grant hands free slots to waiters, one queue after another. Called with
// mu held.
func (s *fairSem) grant() {
	n := len(s.queues)
	for s.waiting > 0 && s.used < s.limit {
		for i := range n {
			q := (s.next + i) % n
			qs := s.queues[q]
			if len(qs) == 0 {
				continue
			}
			w := qs[0]
			qs[0] = nil
			if len(qs) == 1 {
				s.queues[q] = qs[:0]
			} else {
				s.queues[q] = qs[1:]
			}
			s.waiting--
			s.used++
			s.next = (q + 1) % n
			w.granted = true
			close(w.ready)
			break
		}
	}
}

// EndpointStats is the state of one endpoint's concurrency limit, as
// Pool.EndpointStats returns it: a plain value, ready for a progress
// report or the run manifest.
type EndpointStats struct {
	// URL is the endpoint, without credentials.
	URL string `json:"url"`
	// Models are the pool's models the endpoint serves, in configuration
	// order.
	Models []string `json:"models"`
	// Auto reports an adaptive limit (max_concurrent: auto).
	Auto bool `json:"auto,omitempty"`
	// Limit is the concurrency limit now: max_concurrent when fixed, the
	// controller's current choice when adaptive.
	Limit int `json:"limit"`
	// Max is max_concurrent, or the ceiling of an adaptive limit.
	Max int `json:"max"`
	// InFlight is the number of calls holding a slot (for a moment more
	// than Limit, after an adaptive limit dropped); Waiting, the number of
	// calls waiting for one.
	InFlight int `json:"in_flight"`
	Waiting  int `json:"waiting"`
	// Backoffs counts the times an adaptive limit was halved after a 429,
	// a 5xx or a timeout.
	Backoffs int64 `json:"backoffs,omitempty"`
	// BaselineMs is an adaptive limit's estimate of the server's unloaded
	// latency, and LatencyMs the median latency of its last window of
	// calls, in milliseconds (0 before the first window).
	BaselineMs float64 `json:"baseline_ms,omitempty"`
	LatencyMs  float64 `json:"latency_ms,omitempty"`
}

// EndpointStats returns the state of every endpoint's concurrency limit,
// in the order of the endpoints' first models.
func (p *Pool) EndpointStats() []EndpointStats {
	var out []EndpointStats
	at := map[*endpoint]int{}
	for _, m := range p.models {
		if i, ok := at[m.ep]; ok {
			out[i].Models = append(out[i].Models, m.info.Name)
			continue
		}
		at[m.ep] = len(out)
		out = append(out, m.ep.stats(m.info.Name))
	}
	return out
}

func (e *endpoint) stats(model string) EndpointStats {
	limit, used, waiting := e.slots.state()
	s := EndpointStats{
		URL: e.url, Models: []string{model}, Auto: e.auto != nil,
		Limit: limit, Max: e.cfg.MaxConcurrent, InFlight: used, Waiting: waiting,
	}
	if e.auto != nil {
		a := e.auto.state()
		s.Backoffs = a.backoffs
		s.BaselineMs = float64(a.baseline) / float64(time.Millisecond)
		s.LatencyMs = float64(a.last) / float64(time.Millisecond)
	}
	return s
}
