package jetstream

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// waiter is a Do waiting for the result of its call. A result under its
// key always answers it; a failure answers it only if it is the failure
// of the message the Do waits for (a failure record can be older than a
// retry of the same call).
type waiter struct {
	ch  chan outcome // buffered: served once
	seq uint64       // the queued message; 0 until published
	// early holds the failures of the key seen before seq was known.
	early []failure
}

// wait registers a waiter for key.
func (e *Executor) wait(key string) *waiter {
	w := &waiter{ch: make(chan outcome, 1)}
	e.mu.Lock()
	e.waiters[key] = append(e.waiters[key], w)
	e.mu.Unlock()
	return w
}

// unwait removes a waiter that gave up or was served.
func (e *Executor) unwait(key string, w *waiter) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.remove(key, w)
}

// remove takes w off key's list; e.mu is held.
func (e *Executor) remove(key string, w *waiter) bool {
	ws := e.waiters[key]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			if len(ws) == 0 {
				delete(e.waiters, key)
			} else {
				e.waiters[key] = ws
			}
			return true
		}
	}
	return false
}

// serve hands o to w if it still waits; e.mu is held.
func (e *Executor) serve(key string, w *waiter, o outcome) {
	if e.remove(key, w) {
		w.ch <- o
	}
}

// queued records which message w waits for, and serves it a failure of
// that message seen meanwhile.
func (e *Executor) queued(key string, w *waiter, seq uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w.seq = seq
	for _, f := range w.early {
		if f.Seq == seq {
			e.serve(key, w, outcome{err: f.err()})
			break
		}
	}
	w.early = nil
}

func (e *Executor) waiting(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.waiters[key]) > 0
}

// deliver hands a result to every waiter of key.
func (e *Executor) deliver(key string, o outcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range append([]*waiter(nil), e.waiters[key]...) {
		e.serve(key, w, o)
	}
}

func (e *Executor) onResult(entry jetstream.KeyValueEntry) {
	if !e.waiting(entry.Key()) {
		return
	}
	var s stored
	err := json.Unmarshal(entry.Value(), &s)
	if err != nil {
		err = fmt.Errorf("jetstream: result %s: %w", entry.Key(), err)
	}
	e.deliver(entry.Key(), outcome{resp: s, err: err})
}

func (e *Executor) onFailure(entry jetstream.KeyValueEntry) {
	key := entry.Key()
	if !e.waiting(key) {
		return
	}
	f, err := decodeFailure(entry.Value())
	if err != nil {
		e.log.Error("ignoring a malformed failure record", "key", key, "err", err)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range append([]*waiter(nil), e.waiters[key]...) {
		switch w.seq {
		case 0:
			w.early = append(w.early, f)
		case f.Seq:
			e.serve(key, w, outcome{err: f.err()})
		}
	}
}
