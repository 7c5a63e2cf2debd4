package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// DefaultDrainTimeout is how long a stopping worker lets the calls it
// holds finish before it hands them back.
const DefaultDrainTimeout = 30 * time.Second

// WorkerOptions configure NewWorker.
type WorkerOptions struct {
	// Conn is the connection to NATS (required). The Worker does not
	// close it.
	Conn *nats.Conn
	// Pool executes the calls (required): the worker's own models,
	// limits, retries and API keys. It should have no cache: the results
	// bucket is the cache.
	Pool *llm.Pool
	// Models are the models of Pool to serve (see Servable); nil serves
	// every model. A worker pulls the calls of their endpoints.
	Models []string
	// Topology says how the stream and buckets are created, if this
	// worker is the first process to need them.
	Topology Topology
	// RetryDelay is how long a call that failed with a transient error
	// waits, per delivery so far, before it is handed out again; the
	// pool's own retries come first (0: one second).
	RetryDelay time.Duration
	// DrainTimeout is how long Run lets the calls in flight finish once
	// its context is cancelled, before it cancels them and hands them
	// back (0: DefaultDrainTimeout).
	DrainTimeout time.Duration
	// Logger receives what the worker does; nil discards it.
	Logger *slog.Logger
}

// Worker pulls the calls of its endpoints from the queue, executes them
// through its pool, stores each result once and acknowledges it. The zero
// value is not usable: build one with NewWorker, and Run it once. Served
// may be called from any goroutine.
type Worker struct {
	js     jetstream.JetStream
	res    *resources
	pool   *llm.Pool
	eps    []*endpoint
	drain  time.Duration
	delay  time.Duration
	log    *slog.Logger
	served atomic.Int64
}

// NewWorker binds to (or creates) the stream and buckets.
func NewWorker(ctx context.Context, o WorkerOptions) (*Worker, error) {
	if o.Conn == nil || o.Pool == nil {
		return nil, errors.New("jetstream worker: Conn and Pool are required")
	}
	js, err := jetstream.New(o.Conn)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	res, err := setup(ctx, js, o.Topology)
	if err != nil {
		return nil, err
	}
	w := &Worker{js: js, res: res, pool: o.Pool, drain: o.DrainTimeout, delay: o.RetryDelay, log: o.Logger}
	if w.delay <= 0 {
		w.delay = time.Second
	}
	if w.drain <= 0 {
		w.drain = DefaultDrainTimeout
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	for _, ep := range endpointsOf(o.Pool) {
		if o.Models == nil || slices.ContainsFunc(ep.models, func(m string) bool { return slices.Contains(o.Models, m) }) {
			w.eps = append(w.eps, ep)
		}
	}
	if len(w.eps) == 0 {
		return nil, errors.New("jetstream worker: no endpoint to serve")
	}
	return w, nil
}

// Served returns the number of calls this worker executed and stored.
func (w *Worker) Served() int64 { return w.served.Load() }

// Run serves until ctx is cancelled, then stops pulling, lets the calls
// it holds finish for up to the drain timeout, hands back (naks) those
// still running, and returns nil. It returns an error only if it cannot
// serve at all.
func (w *Worker) Run(ctx context.Context) error {
	callCtx, cancelCalls := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelCalls()
	var calls sync.WaitGroup
	g, gctx := errgroup.WithContext(ctx)
	for _, ep := range w.eps {
		g.Go(func() error { return w.serve(gctx, callCtx, ep, &calls) })
	}
	err := g.Wait()
	done := make(chan struct{})
	go func() {
		calls.Wait()
		close(done)
	}()
	t := time.NewTimer(w.drain)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		w.log.Info("handing back the calls still running", "after", w.drain)
		cancelCalls()
		<-done
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// queue is a worker's view of one endpoint's consumer.
type queue struct {
	ep         *endpoint
	cons       jetstream.Consumer
	ackWait    atomic.Int64 // nanoseconds
	maxDeliver atomic.Int64
}

func (q *queue) refresh(info *jetstream.ConsumerInfo) {
	q.ackWait.Store(int64(info.Config.AckWait))
	q.maxDeliver.Store(int64(maxDeliverOf(info.Config)))
}

// bind finds the endpoint's consumer, or creates it with this worker's
// limits when no coordinator has yet (a coordinator's settings replace
// them when it starts).
func (w *Worker) bind(ctx context.Context, ep *endpoint) (*queue, error) {
	q := &queue{ep: ep}
	err := retry(ctx, func(ctx context.Context) error {
		cons, err := w.js.Consumer(ctx, StreamName, ep.consumer)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			cfg := consumerConfig(ep, queueSettings{ackWait: DefaultAckWait, maxDeliver: DefaultMaxDeliver})
			cons, err = w.js.CreateConsumer(ctx, StreamName, cfg)
			if errors.Is(err, jetstream.ErrConsumerExists) {
				cons, err = w.js.Consumer(ctx, StreamName, ep.consumer)
			}
		}
		if err != nil {
			return err
		}
		q.cons = cons
		q.refresh(cons.CachedInfo())
		return nil
	})
	return q, err
}

// serve pulls one endpoint's calls, at most the endpoint's local
// max_concurrent at a time, until ctx is done.
func (w *Worker) serve(ctx, callCtx context.Context, ep *endpoint, calls *sync.WaitGroup) error {
	q, err := w.bind(ctx, ep)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("jetstream: queue of %s: %w", ep.url, err)
	}
	w.log.Info("serving", "endpoint", ep.url, "models", ep.models, "max_concurrent", ep.limits.MaxConcurrent)
	slots := make(chan struct{}, max(ep.limits.MaxConcurrent, 1))
	wait := 50 * time.Millisecond
	lastInfo := time.Now()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		n := 1
		for n < cap(slots) {
			select {
			case slots <- struct{}{}:
				n++
				continue
			default:
			}
			break
		}
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		batch, err := q.cons.Fetch(n, jetstream.FetchContext(fctx))
		got := 0
		if err == nil {
			for msg := range batch.Messages() {
				got++
				calls.Add(1)
				go func() {
					defer calls.Done()
					defer func() { <-slots }()
					if ctx.Err() != nil {
						msg.Nak() // stopping: another worker takes it
						return
					}
					w.handle(callCtx, q, msg)
				}()
			}
			err = batch.Error()
		}
		cancel()
		for range n - got {
			<-slots
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			w.log.Warn("pulling calls failed; retrying", "endpoint", ep.url, "err", err)
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				if nq, berr := w.bind(ctx, ep); berr == nil {
					q = nq
				}
			}
			if sleep(ctx, wait) != nil {
				return nil
			}
			wait = min(wait*2, 2*time.Second)
			continue
		}
		wait = 50 * time.Millisecond
		if time.Since(lastInfo) > 10*time.Second {
			if info, err := q.cons.Info(ctx); err == nil {
				q.refresh(info)
			}
			lastInfo = time.Now()
		}
	}
}

// handle executes one delivered call.
func (w *Worker) handle(ctx context.Context, q *queue, msg jetstream.Msg) {
	var deliveries int
	if md, err := msg.Metadata(); err == nil {
		deliveries = int(md.NumDelivered)
	}
	maxDeliver := int(q.maxDeliver.Load())
	var c callMsg
	if err := json.Unmarshal(msg.Data(), &c); err != nil || len(c.Key) != 64 {
		w.log.Error("dropping a malformed call message", "subject", msg.Subject(), "err", err)
		msg.Term()
		return
	}
	log := w.log.With("model", c.Model, "key", c.Key[:16], "delivery", deliveries)
	key, err := w.pool.CacheKey(c.Model, c.Request, c.Sample)
	if err != nil || key != c.Key {
		// This worker's configuration of the model differs from the
		// coordinator's (another model, other options): another worker
		// may have it right.
		if deliveries >= maxDeliver {
			w.fail(ctx, msg, c, deliveries, "bad_request",
				fmt.Sprintf("no worker serves model %q as the coordinator's configuration describes it (check that the workers run the same configuration)", c.Model))
			return
		}
		log.Warn("this worker's configuration of the model differs from the coordinator's; leaving the call to another worker")
		msg.NakWithDelay(time.Second)
		return
	}
	// A result stored by an earlier delivery whose ack was lost.
	var answered bool
	err = retry(ctx, func(ctx context.Context) error {
		_, err := w.res.results.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		answered = err == nil
		return err
	})
	if err != nil {
		log.Warn("cannot tell whether the call was answered; handing it back", "err", err)
		msg.Nak()
		return
	}
	if answered {
		log.Info("already answered; acknowledging")
		w.ack(ctx, msg)
		return
	}
	if deliveries > maxDeliver {
		w.fail(ctx, msg, c, deliveries, "timeout",
			fmt.Sprintf("handed to workers %d times without an answer (workers stopped or went silent for longer than ack_wait)", deliveries-1))
		return
	}

	// Tell JetStream the call is alive while it runs, so that AckWait
	// does not hand it to another worker.
	beat := time.Duration(q.ackWait.Load()) / 3
	hbCtx, stopBeat := context.WithCancel(ctx)
	var beats sync.WaitGroup
	beats.Add(1)
	go func() {
		defer beats.Done()
		t := time.NewTicker(max(beat, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				msg.InProgress()
			}
		}
	}()
	resp, err := w.pool.Do(ctx, c.Model, c.Request, c.Sample)
	stopBeat()
	beats.Wait()

	if err != nil {
		switch {
		case ctx.Err() != nil:
			log.Info("handing the call back")
			msg.Nak()
		case !llm.Retryable(err) || deliveries >= maxDeliver:
			log.Error("call failed for good", "err", err)
			w.fail(ctx, msg, c, deliveries, llm.ErrorKind(err), err.Error())
		default:
			delay := min(time.Duration(deliveries)*w.delay, 30*time.Second)
			log.Warn("call failed; handing it back", "retry_in", delay, "err", err)
			msg.NakWithDelay(delay)
		}
		return
	}
	value, err := json.Marshal(stored{resp})
	if err == nil {
		err = checkSize("the response", len(value), w.maxPayload())
	}
	if err != nil {
		w.fail(ctx, msg, c, deliveries, "bad_response", err.Error())
		return
	}
	err = retry(ctx, func(ctx context.Context) error {
		_, err := w.res.results.Create(ctx, key, value)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil // another worker stored it first: same request, same key
		}
		return err
	})
	if err != nil {
		log.Error("storing the result failed; handing the call back", "err", err)
		msg.Nak()
		return
	}
	w.served.Add(1)
	w.ack(ctx, msg)
}

func (w *Worker) maxPayload() int64 { return w.js.Conn().MaxPayload() }

// ack acknowledges and waits for the server to confirm. A lost ack is
// harmless: the redelivered call finds its result and is acknowledged
// without a model call.
func (w *Worker) ack(ctx context.Context, msg jetstream.Msg) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		w.log.Warn("acknowledgement not confirmed; a redelivery will find the stored result", "err", err)
	}
}

// fail records a call's failure for good and takes it off the queue.
func (w *Worker) fail(ctx context.Context, msg jetstream.Msg, c callMsg, deliveries int, kind, text string) {
	var seq uint64
	if md, err := msg.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	b, _ := json.Marshal(failure{Model: c.Model, Kind: kind, Error: text, Deliveries: deliveries, Seq: seq})
	err := retry(ctx, func(ctx context.Context) error {
		_, err := w.res.failures.Put(ctx, c.Key, b)
		return err
	})
	if err != nil {
		w.log.Error("recording a failed call failed; handing it back", "model", c.Model, "err", err)
		msg.Nak()
		return
	}
	msg.TermWithReason("failed for good: " + kind)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
