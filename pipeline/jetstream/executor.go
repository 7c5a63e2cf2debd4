package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

// Options configure NewExecutor.
type Options struct {
	// Conn is the connection to NATS (required). The Executor does not
	// close it.
	Conn *nats.Conn
	// Local is the run's local pool (required): its models, cache keys
	// and response cache. Its models are never called from here.
	Local *llm.Pool
	// AckWait is how long a worker may hold a call without a sign of
	// life (0: DefaultAckWait).
	AckWait time.Duration
	// MaxDeliver is how many deliveries a call gets before it fails for
	// good (0: DefaultMaxDeliver).
	MaxDeliver int
	// Topology says how the stream and buckets are created.
	Topology Topology
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// Executor is the coordinator's side of a distributed run: a
// pipeline.Executor (with CacheChecker and StatsReporter) whose calls run
// on workers. It is safe for concurrent use. The zero value is not
// usable: build one with NewExecutor, and Close it when the run is over.
type Executor struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	res   *resources
	local *llm.Pool
	cache *llm.Cache // the local pool's, or nil
	meter *llm.Meter
	log   *slog.Logger
	eps   map[string]*pacer // by model name

	mu      sync.Mutex
	waiters map[string][]*waiter // by cache key

	cancel context.CancelFunc
	group  *errgroup.Group
}

// pacer holds an endpoint's rate limits on the coordinator, which paces
// publishing so that every worker together stays under them.
type pacer struct {
	ep  *endpoint
	rpm *rate.Limiter // nil = unlimited
	tpm *rate.Limiter // nil = unlimited
}

// outcome is what a watch delivers to a waiting Do.
type outcome struct {
	resp stored
	err  error
}

// NewExecutor creates (or binds to) the stream, the buckets and one
// consumer per endpoint of the local pool (MaxAckPending = the endpoint's
// max_concurrent), and starts watching the buckets.
func NewExecutor(ctx context.Context, o Options) (*Executor, error) {
	if o.Conn == nil || o.Local == nil {
		return nil, errors.New("jetstream executor: Conn and Local are required")
	}
	js, err := jetstream.New(o.Conn)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	q := queueSettings{ackWait: o.AckWait, maxDeliver: o.MaxDeliver}
	if q.ackWait <= 0 {
		q.ackWait = DefaultAckWait
	}
	if q.maxDeliver <= 0 {
		q.maxDeliver = DefaultMaxDeliver
	}
	res, err := setup(ctx, js, o.Topology)
	if err != nil {
		return nil, err
	}
	e := &Executor{
		nc: o.Conn, js: js, res: res, local: o.Local, cache: o.Local.Cache(),
		meter: llm.NewMeter(o.Local.All()), log: o.Logger,
		eps: map[string]*pacer{}, waiters: map[string][]*waiter{},
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	for _, ep := range endpointsOf(o.Local) {
		err := retry(ctx, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, StreamName, consumerConfig(ep, q))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("jetstream: queue of %s: %w", ep.url, err)
		}
		p := &pacer{ep: ep}
		if ep.limits.RequestsPerMinute > 0 {
			p.rpm = rate.NewLimiter(rate.Limit(ep.limits.RequestsPerMinute/60), 1)
		}
		if ep.limits.TokensPerMinute > 0 {
			p.tpm = rate.NewLimiter(rate.Limit(float64(ep.limits.TokensPerMinute)/60), ep.limits.TokensPerMinute)
		}
		for _, m := range ep.models {
			e.eps[m] = p
		}
	}

	// The watches start before the first Do: a result stored after this
	// point reaches a waiter through them, one stored before is found by
	// Do's own look-up.
	wctx, cancel := context.WithCancel(context.Background())
	w, err := e.startWatches(ctx, wctx)
	if err != nil {
		cancel()
		return nil, err
	}
	e.cancel = cancel
	e.group = new(errgroup.Group)
	e.group.Go(func() error { return e.watch(wctx, w) })
	return e, nil
}

// watches are the two bucket watches.
type watches struct{ results, failures jetstream.KeyWatcher }

func (w watches) stop() {
	w.results.Stop()
	w.failures.Stop()
}

// startWatches starts the watches, retrying until ctx is done; they live
// until life is done (a watch ends with the context it was started with).
func (e *Executor) startWatches(ctx, life context.Context) (watches, error) {
	var w watches
	err := retry(ctx, func(context.Context) error {
		var err error
		if w.results, err = e.res.results.WatchAll(life, jetstream.UpdatesOnly()); err != nil {
			return fmt.Errorf("jetstream: watching %s: %w", ResultsBucket, err)
		}
		if w.failures, err = e.res.failures.WatchAll(life, jetstream.UpdatesOnly()); err != nil {
			w.results.Stop()
			return fmt.Errorf("jetstream: watching %s: %w", FailuresBucket, err)
		}
		return nil
	})
	return w, err
}

// Close stops the watches. The results not yet written to the local cache
// are written when the cache is closed. Calls still waiting return their
// context's error when it is cancelled; Close does not cancel them.
func (e *Executor) Close() error {
	e.cancel()
	return e.group.Wait()
}

// watch dispatches the buckets' updates until ctx is done. When the
// connection comes back after an outage (a server restarted, a cluster
// node lost), it starts new watches and looks up every waiting key: a
// watch's consumer may not have survived, and a result stored while no
// watch was running must not be waited for forever.
func (e *Executor) watch(ctx context.Context, w watches) error {
	defer func() { w.stop() }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	seen := e.nc.Stats().Reconnects
	rewatch := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case entry, ok := <-w.results.Updates():
			if !ok {
				rewatch = true
			} else if entry != nil && entry.Operation() == jetstream.KeyValuePut {
				e.onResult(entry)
			}
		case entry, ok := <-w.failures.Updates():
			if !ok {
				rewatch = true
			} else if entry != nil && entry.Operation() == jetstream.KeyValuePut {
				e.onFailure(entry)
			}
		case <-tick.C:
			if n := e.nc.Stats().Reconnects; n != seen && e.nc.IsConnected() {
				seen, rewatch = n, true
			}
		}
		if !rewatch {
			continue
		}
		rewatch = false
		nw, err := e.startWatches(ctx, ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.log.Error("watching the results failed; retrying", "err", err)
			rewatch = true
			continue
		}
		w.stop()
		w = nw
		e.recheck(ctx)
	}
}

// recheck looks up every waiting key.
func (e *Executor) recheck(ctx context.Context) {
	e.mu.Lock()
	keys := make([]string, 0, len(e.waiters))
	for k := range e.waiters {
		keys = append(keys, k)
	}
	e.mu.Unlock()
	for _, k := range keys {
		if entry, err := e.res.results.Get(ctx, k); err == nil {
			e.onResult(entry)
		} else if entry, err := e.res.failures.Get(ctx, k); err == nil {
			e.onFailure(entry)
		}
	}
}

// Cached reports whether Do would answer the call from the local cache or
// the results bucket.
func (e *Executor) Cached(model string, req llm.Request, sample int) bool {
	if e.local.Cached(model, req, sample) {
		return true
	}
	key, err := e.local.CacheKey(model, req, sample)
	if err != nil {
		return false
	}
	_, err = e.res.results.Get(context.Background(), key)
	return err == nil
}

// Stats returns the accounting of the calls, per model, in the local
// pool's form: tokens and latency as the workers measured them.
func (e *Executor) Stats() map[string]llm.ModelStats { return e.meter.Stats() }

// Do answers a call from the local cache, else from the results bucket,
// else queues it for the workers of its endpoint and waits for its result
// or its failure. A result is stored in the local cache too (journalled
// at once when the cache writes behind), so that the run directory can
// resume without NATS.
func (e *Executor) Do(ctx context.Context, model string, req llm.Request, sample int) (llm.Response, error) {
	e.meter.Call(model)
	key, err := e.local.CacheKey(model, req, sample)
	if err != nil {
		e.meter.Failure(model)
		return llm.Response{}, err
	}
	if e.cache != nil {
		if resp, found, err := e.cache.Get(key); err != nil {
			e.log.Warn("response cache read failed; asking the workers", "model", model, "err", err)
		} else if found {
			e.meter.CacheHit(model)
			return resp, nil
		}
	}
	w := e.wait(key)
	defer e.unwait(key, w)
	s, found, err := e.lookup(ctx, key)
	if err != nil {
		return llm.Response{}, e.fail(ctx, model, err)
	}
	if found {
		e.meter.CacheHit(model)
		e.keep(key, s.Response)
		s.Cached = true
		return s.Response, nil
	}
	if err := e.publish(ctx, w, model, key, req, sample); err != nil {
		return llm.Response{}, e.fail(ctx, model, err)
	}
	var o outcome
	select {
	case o = <-w.ch:
	case <-ctx.Done():
		e.meter.Canceled(model)
		return llm.Response{}, fmt.Errorf("model %q: %w", model, ctx.Err())
	}
	if o.err != nil {
		e.meter.Failure(model)
		return llm.Response{}, o.err
	}
	resp := o.resp.Response
	e.meter.Attempt(model, false) // a worker's own retries show in its log
	e.meter.Success(model, resp)
	if p := e.eps[model]; p.tpm != nil {
		if extra := resp.PromptTokens + resp.CompletionTokens - llm.EstimateTokens(req); extra > 0 {
			p.tpm.ReserveN(time.Now(), min(extra, p.tpm.Burst()))
		}
	}
	e.keep(key, resp)
	return resp, nil
}

// fail accounts for a call that could not be queued or looked up.
func (e *Executor) fail(ctx context.Context, model string, err error) error {
	if ctx.Err() != nil {
		e.meter.Canceled(model)
		return fmt.Errorf("model %q: %w", model, ctx.Err())
	}
	e.meter.Failure(model)
	return fmt.Errorf("model %q: %w", model, err)
}

// keep stores a response in the local cache.
func (e *Executor) keep(key string, resp llm.Response) {
	if e.cache == nil {
		return
	}
	if err := e.cache.Put(key, resp); err != nil {
		e.log.Error("response cache write failed; the result stays in the bucket", "err", err)
	}
}

// lookup reads key from the results bucket, retrying while NATS is away.
func (e *Executor) lookup(ctx context.Context, key string) (stored, bool, error) {
	var s stored
	var found bool
	err := retry(ctx, func(ctx context.Context) error {
		entry, err := e.res.results.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		if err := json.Unmarshal(entry.Value(), &s); err != nil {
			return permanent(fmt.Errorf("jetstream: result %s: %w", key, err))
		}
		return nil
	})
	return s, found, err
}

// publish queues a call, paced by its endpoint's rate limits, with its
// cache key as message id: a call queued twice within the duplicate
// window (a coordinator restarted, two coordinators of one run) is
// queued once.
func (e *Executor) publish(ctx context.Context, w *waiter, model, key string, req llm.Request, sample int) error {
	p := e.eps[model]
	body, err := json.Marshal(callMsg{Key: key, Model: model, Sample: sample, Request: req})
	if err != nil {
		return fmt.Errorf("jetstream: encoding the call: %w", err)
	}
	if err := checkSize("the request", len(body), e.nc.MaxPayload()); err != nil {
		return err
	}
	if p.rpm != nil {
		if err := p.rpm.Wait(ctx); err != nil {
			return err
		}
	}
	if p.tpm != nil {
		if err := p.tpm.WaitN(ctx, min(max(llm.EstimateTokens(req), 1), p.tpm.Burst())); err != nil {
			return err
		}
	}
	id := key
	for range 10 {
		ack, err := e.send(ctx, p.ep.subject, id, body)
		if err != nil {
			return err
		}
		if !ack.Duplicate {
			e.queued(key, w, ack.Sequence)
			return nil
		}
		// The id was queued before. Either the message is still there (a
		// worker will answer it), or it was answered (the result is in the
		// bucket, stored before the ack) or failed (a failure record is
		// kept); a call retried after a failure needs a new id.
		gone, err := e.gone(ctx, key, ack.Sequence)
		if err != nil {
			return err
		}
		if !gone {
			e.queued(key, w, ack.Sequence)
			return nil
		}
		if _, found, err := e.lookup(ctx, key); err != nil || found {
			if found {
				// Stored since this Do looked: the watch may have come
				// first.
				e.redeliver(ctx, key)
			}
			return err
		}
		id = fmt.Sprintf("%s.%d", key, ack.Sequence)
		e.log.Debug("requeueing an answered call", "id", id)
	}
	return errors.New("jetstream: the call's message id keeps colliding with answered calls")
}

// redeliver hands the stored result of key to its waiters.
func (e *Executor) redeliver(ctx context.Context, key string) {
	if s, found, err := e.lookup(ctx, key); err == nil && found {
		e.deliver(key, outcome{resp: s})
	}
}

// send publishes with a message id, retrying while NATS is away.
func (e *Executor) send(ctx context.Context, subject, id string, body []byte) (*jetstream.PubAck, error) {
	var ack *jetstream.PubAck
	err := retry(ctx, func(ctx context.Context) error {
		var err error
		ack, err = e.js.Publish(ctx, subject, body, jetstream.WithMsgID(id))
		return err
	})
	return ack, err
}

// gone reports whether the message of key at seq has left the stream, or
// is leaving it because it failed for good.
func (e *Executor) gone(ctx context.Context, key string, seq uint64) (bool, error) {
	var gone bool
	err := retry(ctx, func(ctx context.Context) error {
		_, err := e.res.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			gone = true
			return nil
		}
		if err != nil {
			return err
		}
		entry, err := e.res.failures.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		f, err := decodeFailure(entry.Value())
		gone = err == nil && f.Seq == seq
		return nil
	})
	return gone, err
}
