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
// concurrency limit that hands free slots to the endpoint's models in turn,
// request and token rate limiters, a pause set by Retry-After, and the call
// timeout.
type endpoint struct {
	url     string // without credentials
	cfg     EndpointConfig
	slots   *fairSem
	rpm     *rate.Limiter // nil = unlimited
	tpm     *rate.Limiter // nil = unlimited
	paused  atomic.Int64  // unix nanoseconds until which no request starts
	members int           // models on this endpoint (queue indexes)
}

func newEndpoint(url string, cfg EndpointConfig, members int) *endpoint {
	e := &endpoint{url: url, cfg: cfg, members: members, slots: newFairSem(cfg.MaxConcurrent, members)}
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
// same endpoint. Acquire honours its context.
type fairSem struct {
	mu      sync.Mutex
	free    int
	queues  [][]*semWaiter
	waiting int
	next    int // the queue served first on the next release
}

type semWaiter struct {
	ready   chan struct{}
	granted bool // set under mu when a slot was handed to this waiter
}

func newFairSem(n, queues int) *fairSem {
	return &fairSem{free: n, queues: make([][]*semWaiter, max(queues, 1))}
}

// acquire takes a slot for queue q, waiting for one if none is free.
func (s *fairSem) acquire(ctx context.Context, q int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.free > 0 && s.waiting == 0 {
		s.free--
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
// order.
func (s *fairSem) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiting == 0 {
		s.free++
		return
	}
	n := len(s.queues)
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
		s.next = (q + 1) % n
		w.granted = true
		close(w.ready)
		return
	}
}
