package llm

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// controller returns an adaptive limit with the given ceiling and a
// record of every limit it applied.
func controller(ceiling int) (*adaptiveLimit, *[]int) {
	var applied []int
	a := newAdaptiveLimit(ceiling, func(n int) { applied = append(applied, n) })
	return a, &applied
}

// feedWindow ends one full window of calls at the controller's limit,
// each with latency lat and load calls in flight, on a clock that starts
// at *now and moves forward.
func feedWindow(a *adaptiveLimit, now *time.Time, lat time.Duration, load int) {
	n := max(a.current(), a.window)
	for range n {
		tk := a.begin(*now, load)
		*now = now.Add(lat / time.Duration(max(load, 1)))
		a.end(tk, tk.start.Add(lat), outcomeOK)
	}
}

func TestAdaptiveGrowsOnFlatLatency(t *testing.T) {
	a, applied := controller(64)
	now := t0
	if got := a.current(); got != autoStart {
		t.Fatalf("start = %d, want %d", got, autoStart)
	}
	// Slow start: every window at flat latency with the limit in use
	// doubles it, up to the ceiling, which it never passes.
	for range 10 {
		feedWindow(a, &now, 100*time.Millisecond, a.current())
	}
	if want := []int{2, 4, 8, 16, 32, 64}; !slices.Equal(*applied, want) {
		t.Errorf("limits applied = %v, want %v", *applied, want)
	}
	// After a backoff, growth is additive: one slot per round trip, and
	// a window of 16 calls at limit 8 spans two.
	a, applied = controller(64)
	for range 4 {
		feedWindow(a, &now, 100*time.Millisecond, a.current()) // 1 → 16
	}
	a.end(a.begin(now, 16), now.Add(time.Second), outcomeOverload) // 16 → 8
	for range 4 {
		feedWindow(a, &now, 100*time.Millisecond, a.current())
	}
	if want := []int{2, 4, 8, 16, 8, 10, 11, 12, 13}; !slices.Equal(*applied, want) {
		t.Errorf("limits applied = %v, want %v", *applied, want)
	}
}

func TestAdaptiveHoldsWhenCallersDoNotUseTheLimit(t *testing.T) {
	a, applied := controller(64)
	now := t0
	feedWindow(a, &now, 100*time.Millisecond, 1) // 1 → 2
	*applied = nil
	for range 5 {
		feedWindow(a, &now, 100*time.Millisecond, 1) // one caller: load 1 < limit 2
	}
	if len(*applied) != 0 || a.current() != 2 {
		t.Errorf("limit %d after windows at load 1 (applied %v), want it held at 2", a.current(), *applied)
	}
}

func TestAdaptiveHalvesOnOverload(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"429", &StatusError{StatusCode: http.StatusTooManyRequests}},
		{"503", &StatusError{StatusCode: http.StatusServiceUnavailable}},
		{"timeout", fmt.Errorf("call: %w", ErrTimeout)},
	} {
		err := tc.err
		t.Run(tc.name, func(t *testing.T) {
			a, applied := controller(64)
			now := t0
			for range 6 {
				feedWindow(a, &now, 100*time.Millisecond, a.current()) // → 64
			}
			*applied = nil
			// A burst of failures of calls started at 64 halves once.
			var burst []ticket
			for range 20 {
				burst = append(burst, a.begin(now, 64))
			}
			for _, tk := range burst {
				a.end(tk, now.Add(time.Second), outcomeOf(err))
			}
			if a.current() != 32 {
				t.Fatalf("after a burst of %v: limit %d, want 32", err, a.current())
			}
			// Each failure started under the current limit halves again,
			// never below 1.
			for range 8 {
				tk := a.begin(now, a.current())
				a.end(tk, now.Add(time.Second), outcomeOf(err))
			}
			if want := []int{32, 16, 8, 4, 2, 1}; !slices.Equal(*applied, want) {
				t.Errorf("limits applied = %v, want %v", *applied, want)
			}
			if a.state().backoffs != 6 {
				t.Errorf("backoffs = %d, want 6", a.state().backoffs)
			}
		})
	}
}

func TestAdaptiveOutcomes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want outcome
	}{
		{nil, outcomeOK},
		{&StatusError{StatusCode: 429}, outcomeOverload},
		{&StatusError{StatusCode: 500}, outcomeOverload},
		{&StatusError{StatusCode: 504}, outcomeOverload},
		{&StatusError{StatusCode: 408}, outcomeOverload},
		{fmt.Errorf("x: %w", ErrTimeout), outcomeOverload},
		{&StatusError{StatusCode: 400}, outcomeIgnore},
		{&StatusError{StatusCode: 401}, outcomeIgnore},
		{ErrModelNotFound, outcomeIgnore},
		{ErrUnreachable, outcomeIgnore},
		{ErrBadResponse, outcomeIgnore},
		{context.Canceled, outcomeIgnore},
		{errors.New("other"), outcomeIgnore},
	} {
		if got := outcomeOf(tc.err); got != tc.want {
			t.Errorf("outcomeOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	// Ignored outcomes and latencies of calls started under another
	// limit leave the window as it was.
	a, _ := controller(64)
	now := t0
	feedWindow(a, &now, time.Second, 1) // 1 → 2
	old := a.begin(t0, 2)
	a.end(a.begin(t0, 2), t0.Add(time.Second), outcomeOverload) // 2 → 1
	for range 100 {
		a.end(old, t0.Add(time.Millisecond), outcomeOK)
		a.end(a.begin(t0, 1), t0.Add(time.Second), outcomeIgnore)
	}
	if a.current() != 1 || len(a.samples) != 0 {
		t.Errorf("limit %d with %d samples, want 1 and none", a.current(), len(a.samples))
	}
}

func TestAdaptiveBacksOffOnRisingLatency(t *testing.T) {
	a, _ := controller(64)
	now := t0
	for range 5 {
		feedWindow(a, &now, 100*time.Millisecond, a.current()) // → 32
	}
	// Latency doubles at 32 in flight: about 16 calls wait in the
	// server's queue, so its capacity is about 16. One slow window
	// changes nothing; the second drops the limit halfway to that plus a
	// small queue, the next ones the rest of the way.
	capacity16 := func(n int) time.Duration { return 100 * time.Millisecond * time.Duration(max(n, 16)) / 16 }
	feedWindow(a, &now, capacity16(32), 32)
	if got := a.current(); got != 32 {
		t.Errorf("limit %d after one slow window, want it held at 32", got)
	}
	feedWindow(a, &now, capacity16(32), 32)
	if got := a.current(); got < 24 || got > 28 {
		t.Errorf("limit %d after latency doubled at 32, want 24..28", got)
	}
	feedWindow(a, &now, capacity16(a.current()), a.current())
	feedWindow(a, &now, capacity16(a.current()), a.current())
	if got := a.current(); got < 16 || got > 24 {
		t.Errorf("limit %d after two more slow windows, want 16..24", got)
	}
	// A window that shows a queue within the tolerated band holds it.
	before := a.current()
	lat := time.Duration(float64(100*time.Millisecond) * float64(before) / float64(before-5))
	feedWindow(a, &now, lat, before)
	if got := a.current(); got != before {
		t.Errorf("limit %d after a window with a queue of 5 at %d, want it held", got, before)
	}
}

// queueSim is a discrete-event simulation of callers driving an adaptive
// limit in front of a server that runs k calls at once and queues the
// rest (FIFO). A call whose latency exceeds timeout fails as a timeout.
type queueSim struct {
	a        *adaptiveLimit
	limit    int
	now      time.Time
	k        int
	service  func() time.Duration
	timeout  time.Duration
	inflight int // calls holding a slot
	waiting  int // callers waiting for a slot
	busy     int // calls the server runs
	queue    []*simCall
	events   simEvents

	served, timeouts int
	peak             int // highest limit applied
}

type simCall struct {
	tk      ticket
	arrival time.Time
	done    time.Time
}

type simEvents []*simCall

func (h simEvents) Len() int           { return len(h) }
func (h simEvents) Less(i, j int) bool { return h[i].done.Before(h[j].done) }
func (h simEvents) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *simEvents) Push(x any)        { *h = append(*h, x.(*simCall)) }
func (h *simEvents) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newQueueSim(k, callers, ceiling int, service func() time.Duration, timeout time.Duration) *queueSim {
	s := &queueSim{k: k, service: service, timeout: timeout, now: t0, waiting: callers}
	s.a = newAdaptiveLimit(ceiling, func(n int) { s.limit = n; s.peak = max(s.peak, n) })
	s.limit = s.a.current()
	s.admit()
	return s
}

// admit starts calls while the limit allows.
func (s *queueSim) admit() {
	for s.waiting > 0 && s.inflight < s.limit {
		s.waiting--
		s.inflight++
		c := &simCall{tk: s.a.begin(s.now, s.inflight), arrival: s.now}
		if s.busy < s.k {
			s.busy++
			c.done = s.now.Add(s.service())
			heap.Push(&s.events, c)
		} else {
			s.queue = append(s.queue, c)
		}
	}
}

// step completes the next call and returns its latency.
func (s *queueSim) step() time.Duration {
	c := heap.Pop(&s.events).(*simCall)
	s.now = c.done
	s.busy--
	for len(s.queue) > 0 && s.busy < s.k {
		next := s.queue[0]
		s.queue = s.queue[1:]
		s.busy++
		next.done = s.now.Add(s.service())
		heap.Push(&s.events, next)
	}
	lat := s.now.Sub(c.arrival)
	o := outcomeOK
	if s.timeout > 0 && lat > s.timeout {
		o = outcomeOverload
		s.timeouts++
	} else {
		s.served++
	}
	s.a.end(c.tk, s.now, o)
	s.inflight--
	s.waiting++ // the caller comes back at once
	s.admit()
	return lat
}

// run completes n calls and returns the throughput over them.
func (s *queueSim) run(n int) float64 {
	start, served := s.now, s.served
	for range n {
		s.step()
	}
	return float64(s.served-served) / s.now.Sub(start).Seconds()
}

// The controller in front of simulated queueing servers: it finds the
// capacity from below without a timeout, holds a throughput at the
// server's maximum, and follows a server that gets slower or smaller.
func TestAdaptiveAgainstQueueingServer(t *testing.T) {
	const L = 100 * time.Millisecond
	flat := func() time.Duration { return L }
	for _, k := range []int{1, 2, 4, 16, 40} {
		t.Run(fmt.Sprintf("K=%d", k), func(t *testing.T) {
			s := newQueueSim(k, 8*k+16, 64, flat, 3*L)
			s.run(200 * k)
			best := float64(k) / L.Seconds()
			got := s.run(2000 * k)
			if got < 0.98*best {
				t.Errorf("throughput %.1f/s, want ≥ 98%% of %.1f/s", got, best)
			}
			if s.timeouts != 0 {
				t.Errorf("%d timeouts", s.timeouts)
			}
			if s.limit < k || s.peak > 64 {
				t.Errorf("limit %d (peak %d), want ≥ K = %d and ≤ 64", s.limit, s.peak, k)
			}
		})
	}
	t.Run("jittered", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		jitter := func() time.Duration { return time.Duration(float64(L) * (0.7 + 0.6*rng.Float64())) }
		s := newQueueSim(8, 100, 64, jitter, 4*L)
		s.run(2000)
		if got, best := s.run(20000), 8/L.Seconds(); got < 0.95*best {
			t.Errorf("throughput %.1f/s, want ≥ 95%% of %.1f/s", got, best)
		}
		if s.timeouts != 0 || s.limit < 8 {
			t.Errorf("%d timeouts, limit %d", s.timeouts, s.limit)
		}
	})
	t.Run("slower for good", func(t *testing.T) {
		lat := L
		s := newQueueSim(8, 100, 64, func() time.Duration { return lat }, 0)
		s.run(2000)
		lat = 3 * L
		s.run(20000)
		// The baseline was measured again: the limit did not settle
		// below the capacity.
		if got, best := s.run(10000), 8/lat.Seconds(); got < 0.98*best {
			t.Errorf("throughput %.2f/s of %.2f/s after the server became 3× slower", got, best)
		}
		if b := s.a.state().baseline; b < 2*L {
			t.Errorf("baseline %v, want it to follow the slower server (%v)", b, lat)
		}
	})
	t.Run("smaller", func(t *testing.T) {
		s := newQueueSim(32, 300, 64, flat, 3*L)
		s.run(5000)
		s.k = 4 // the server lost capacity
		s.run(5000)
		before := s.timeouts
		got := s.run(5000)
		if s.limit > 12 || s.limit < 4 || s.timeouts != before || got < 0.98*4/L.Seconds() {
			t.Errorf("after capacity 32 → 4: limit %d, %d new timeouts, %.1f/s", s.limit, s.timeouts-before, got)
		}
	})
}
