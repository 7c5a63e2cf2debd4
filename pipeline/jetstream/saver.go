package jetstream

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
)

// localLag is how far the coordinator's local cache may trail the results
// bucket. The bucket is where a result becomes durable for the run: a
// coordinator killed before its local write replays the result from the
// bucket on resume and pays nothing again. The local copy is what lets
// the run directory resume without NATS. Writing it behind, one
// transaction a second, saves the commit (two fdatasyncs, about 0.5 ms of
// CPU) that a call had to itself when calls came too slowly to share one.
const localLag = time.Second

// localBatch is how many queued results trigger a write before localLag.
const localBatch = 1024

// saver writes results to the local cache behind the calls that made
// them. It is safe for concurrent use.
type saver struct {
	cache *llm.Cache
	log   *slog.Logger
	lag   time.Duration // localLag but in tests
	full  chan struct{} // signalled when localBatch results wait

	mu    sync.Mutex
	keys  []string
	resps []llm.Response
}

func newSaver(c *llm.Cache, log *slog.Logger) *saver {
	return &saver{cache: c, log: log, lag: localLag, full: make(chan struct{}, 1)}
}

// add queues resp under key.
func (s *saver) add(key string, resp llm.Response) {
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.resps = append(s.resps, resp)
	n := len(s.keys)
	s.mu.Unlock()
	if n >= localBatch {
		select {
		case s.full <- struct{}{}:
		default:
		}
	}
}

// run writes the queue every lag, or sooner when it is full, until
// ctx is done, and then writes what is left.
func (s *saver) run(ctx context.Context) {
	t := time.NewTicker(s.lag)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.flush()
			return
		case <-t.C:
		case <-s.full:
		}
		s.flush()
	}
}

// flush writes every queued result in one transaction.
func (s *saver) flush() {
	s.mu.Lock()
	keys, resps := s.keys, s.resps
	s.keys, s.resps = nil, nil
	s.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	if err := s.cache.PutMany(keys, resps); err != nil {
		s.log.Error("response cache write failed; the results stay in the bucket", "results", len(keys), "err", err)
	}
}
