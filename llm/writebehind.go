package llm

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeBehind is a write-behind cache's queue and its committer. The
// queued entries are readable until a commit holding them succeeds; an
// entry put again while its commit runs stays queued with the newer value.
type writeBehind struct {
	db    *bolt.DB
	kick  chan struct{} // signalled when writeBehindBatch entries wait
	reset chan struct{} // signalled when interval changes
	// interval is the commit interval, changed by SetWriteBehind.
	interval atomic.Int64
	quit     chan struct{}
	done     chan struct{}

	commit sync.Mutex // one commit at a time

	mu      sync.Mutex
	queued  map[string]queuedEntry
	journal *journal // every queued entry, on disk; written under mu
	seq     uint64
	err     error // the last failed commit's, until a Put reports it
	stopped bool
}

type queuedEntry struct {
	val []byte
	seq uint64 // tells a value from a later one under the same key
}

func (w *writeBehind) start(c *Cache) error {
	j, err := openJournal(c.path)
	if err != nil {
		return err
	}
	w.journal = j
	w.db = c.db
	w.queued = make(map[string]queuedEntry)
	w.kick = make(chan struct{}, 1)
	w.reset = make(chan struct{}, 1)
	w.quit = make(chan struct{})
	w.done = make(chan struct{})
	go w.run()
	return nil
}

// get returns the queued value under key; w may be nil.
func (w *writeBehind) get(key string) ([]byte, bool) {
	if w == nil {
		return nil, false
	}
	w.mu.Lock()
	e, ok := w.queued[key]
	w.mu.Unlock()
	return e.val, ok
}

func (w *writeBehind) put(key string, v []byte) error {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return errors.New("cache is closed")
	}
	w.seq++
	w.queued[key] = queuedEntry{val: v, seq: w.seq}
	jerr := w.journal.append(key, v)
	n, err := len(w.queued), w.err
	w.err = nil
	w.mu.Unlock()
	if jerr != nil {
		// Still queued, readable and committed in time: only a crash
		// before then would lose it.
		return fmt.Errorf("journal: %w", jerr)
	}
	if n >= writeBehindBatch {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return err
}

func (w *writeBehind) run() {
	defer close(w.done)
	t := time.NewTicker(time.Duration(w.interval.Load()))
	defer t.Stop()
	syncs := time.NewTicker(journalSync)
	defer syncs.Stop()
	for {
		select {
		case <-w.quit:
			return
		case <-w.reset:
			t.Reset(time.Duration(w.interval.Load()))
			continue
		case <-syncs.C:
			w.mu.Lock()
			err := w.journal.sync()
			if err != nil {
				w.err = fmt.Errorf("journal: %w", err)
			}
			w.mu.Unlock()
			continue
		case <-t.C:
		case <-w.kick:
		}
		if err := w.flush(); err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
		}
	}
}

// flush commits every entry queued when it starts, in one transaction.
func (w *writeBehind) flush() error {
	w.commit.Lock()
	defer w.commit.Unlock()
	w.mu.Lock()
	batch := make(map[string]queuedEntry, len(w.queued))
	for k, e := range w.queued {
		batch[k] = e
	}
	w.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := w.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(responsesBucket)
		for k, e := range batch {
			if err := b.Put([]byte(k), e.val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, e := range batch {
		if w.queued[k].seq == e.seq {
			delete(w.queued, k)
		}
	}
	// The journal need hold only what is still queued. Should the rewrite
	// fail, the old journal holds everything and stays.
	if err := w.journal.rewrite(w.queued); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// stop ends the committer and commits what is left. Puts after it fail.
func (w *writeBehind) stop() error {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return nil
	}
	w.stopped = true
	w.mu.Unlock()
	close(w.quit)
	<-w.done
	if err := w.flush(); err != nil {
		w.journal.f.Close() // kept: the next OpenCache commits it
		return err
	}
	return w.journal.remove()
}
