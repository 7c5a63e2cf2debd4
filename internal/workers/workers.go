// Package workers runs short-lived functions on goroutines that are kept
// and reused, instead of a new goroutine each.
//
// A model call runs deep: the pool, the HTTP client, the JSON decoder.
// A new goroutine starts with a small stack and grows it by copying, a
// few times for every call; at a few hundred calls a second that copying
// was 5-7% of a generate run's CPU. A reused goroutine keeps the stack it
// grew. Go hands a function to an idle worker when there is one, and
// starts a worker when there is none; a worker that waits IdleTimeout
// for work ends, so a burst leaves no goroutines behind for long.
package workers

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// IdleTimeout is how long a worker waits for a function before it ends.
const IdleTimeout = 2 * time.Second

// handoff passes a function to a waiting worker. It is unbuffered: a send
// succeeds only when a worker is waiting to receive it.
var handoff = make(chan func())

// Go runs f on a reused goroutine, or on a new one when every worker is
// busy. It never blocks. f must not assume it runs on a fresh goroutine:
// nothing it leaves behind (a panic recovered, a runtime.LockOSThread
// released) may outlive it.
func Go(f func()) {
	select {
	case handoff <- f:
	default:
		started.Add(1)
		go work(f)
	}
}

// started counts the workers Go has started, for the tests.
var started atomic.Int64

func work(f func()) {
	t := time.NewTimer(IdleTimeout)
	defer t.Stop()
	for {
		f()
		f = nil // let it be collected while the worker waits
		t.Reset(IdleTimeout)
		select {
		case f = <-handoff:
		case <-t.C:
			return
		}
	}
}

// A Group is errgroup.Group with its functions run through Go: a set of
// functions working on one task, whose first error cancels the others'
// context and is what Wait returns.
type Group struct {
	wg     sync.WaitGroup
	once   sync.Once
	err    error
	cancel context.CancelCauseFunc
}

// WithContext returns a Group and a context derived from ctx that is
// cancelled when a function of the group first returns an error, or when
// Wait returns, whichever comes first.
func WithContext(ctx context.Context) (*Group, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	return &Group{cancel: cancel}, ctx
}

// Go runs f through the package's Go.
func (g *Group) Go(f func() error) {
	g.wg.Add(1)
	Go(func() {
		defer g.wg.Done()
		if err := f(); err != nil {
			g.once.Do(func() {
				g.err = err
				if g.cancel != nil {
					g.cancel(err)
				}
			})
		}
	})
}

// Wait waits for every function started with Go and returns the first
// error one of them returned.
func (g *Group) Wait() error {
	g.wg.Wait()
	if g.cancel != nil {
		g.cancel(g.err)
	}
	return g.err
}
