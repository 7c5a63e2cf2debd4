package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/pipeline"
)

// Options configure New.
type Options struct {
	// Local is the run's pool, with its response cache: calls of models
	// that do not go through the Batch API run on it, and batch results
	// go into its cache. Required.
	Local *llm.Pool
	// Config is the pool's configuration: the models' endpoints, key
	// variables and headers, and the retry policy. Required.
	Config llm.Config
	// RunDir holds the journal (JournalFile). Required.
	RunDir string
	// Settings are the flush rule, the polling and the file limits.
	Settings Settings
	// Detach makes Detached fire when the run waits for nothing but live
	// jobs (see pipeline.Detacher).
	Detach bool
	// Getenv reads API keys and header references; nil means os.Getenv.
	Getenv func(string) string
	// HTTPClient sends the Files and Batches API requests; nil means a
	// default client.
	HTTPClient *http.Client
	// Logger receives the jobs' progress and warnings; nil discards them.
	Logger *slog.Logger
}

// Executor runs calls of batch models as Batch API jobs and every other
// call on the local pool (see the package documentation). It implements
// pipeline.Executor, pipeline.CacheChecker, pipeline.StatsReporter,
// pipeline.BatchReporter and pipeline.Detacher. Build one with New and
// Close it when the run is over; it is safe for concurrent use.
type Executor struct {
	local   *llm.Pool
	cache   *llm.Cache
	set     Settings
	retry   llm.RetryConfig
	log     *slog.Logger
	journal *journal
	meter   *llm.Meter
	models  map[string]*model // the OpenAI-compatible models, by pool name
	detach  bool
	prefix  string // names the uploaded files

	mu         sync.Mutex
	calls      map[string]*call  // cache key → the call owed
	live       map[string]*job   // cache key → the job that holds it
	queues     map[string]*queue // model and URL → calls waiting for a job
	jobs       []*job            // every job of the run directory, journal order
	nextLocal  int               // numbers the next job
	localBusy  int               // local pool calls in flight
	waiting    int               // Do calls waiting for a job's result
	submitting int               // submissions in progress
	collecting int               // jobs whose results are being read
	activity   time.Time         // the run's last progress
	closed     bool

	detached   chan struct{}
	detachOnce sync.Once
	kick       chan struct{}
	stop       context.CancelFunc
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

// model is an OpenAI-compatible model of the pool.
type model struct {
	info  llm.ModelInfo
	price llm.Price // the batch price
	api   *client   // nil when the model cannot be reached (its key is unset)
	err   error     // why api is nil
}

// call is a request the executor owes an answer to.
type call struct {
	key      string
	model    *model
	url      string
	line     []byte // the input line, with its newline
	waiters  int
	attempts int  // the jobs it was submitted in
	job      *job // the job holding it; nil while queued
	dropped  bool // left its queue: nobody waits for it
	done     chan struct{}
	resp     llm.Response
	err      error
}

// queue is a model's calls waiting for a job.
type queue struct {
	model *model
	url   string
	calls []*call
	n     int       // calls not dropped
	since time.Time // when the last one joined
}

// job is one Batch API job of the run directory.
type job struct {
	local    string
	model    *model // nil for a job no configured model serves
	name     string // the model's pool name, as journaled
	url      string
	keys     []string
	created  time.Time
	fileID   string
	batchID  string
	status   string
	counts   requestCounts
	cost     float64
	polled   bool // its status was read by this process
	pollErrs int  // failed polls in a row
	nextPoll time.Time
	busy     bool            // a poll or collection is in flight
	over     bool            // done or abandoned
	got      map[string]bool // keys whose result was read (by collect alone)
}

// Job statuses of the executor's own, besides the API's.
const (
	statusUploading = "uploading"
	statusAbandoned = "abandoned"
)

var (
	_ pipeline.Executor      = (*Executor)(nil)
	_ pipeline.CacheChecker  = (*Executor)(nil)
	_ pipeline.StatsReporter = (*Executor)(nil)
	_ pipeline.BatchReporter = (*Executor)(nil)
	_ pipeline.Detacher      = (*Executor)(nil)
)

// Wanted reports whether a run needs the batch executor: some model's
// calls go through the Batch API, or the run directory's journal records
// a job that may be live (whose results a synchronous run must collect
// rather than pay for twice).
func Wanted(local *llm.Pool, runDir string) bool {
	return slices.ContainsFunc(local.All(), func(m llm.ModelInfo) bool { return m.Batch }) || hasLive(runDir)
}

// New opens the run directory's journal, re-attaches to the jobs it
// records (a job whose file was uploaded but whose creation was not
// recorded is looked up by its file), and starts the executor.
func New(ctx context.Context, o Options) (*Executor, error) {
	if o.Local == nil || o.Local.Cache() == nil {
		return nil, errors.New("batch executor: the local pool has no response cache")
	}
	if o.RunDir == "" {
		return nil, errors.New("batch executor: no run directory")
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Executor{
		local:    o.Local,
		cache:    o.Local.Cache(),
		set:      o.Settings.withDefaults(),
		retry:    o.Config.Retry.WithDefaults(),
		log:      o.Logger,
		detach:   o.Detach,
		prefix:   filepath.Base(o.RunDir),
		models:   map[string]*model{},
		calls:    map[string]*call{},
		live:     map[string]*job{},
		queues:   map[string]*queue{},
		activity: time.Now(),
		detached: make(chan struct{}),
		kick:     make(chan struct{}, 1),
	}
	var priced []llm.ModelInfo
	for _, info := range o.Local.All() {
		p := info
		if mc, ok := o.Config.Models.Get(info.Name); ok && info.Backend == llm.BackendOpenAI {
			m := &model{info: info, price: info.Price.Batch()}
			if access, err := llm.NewOpenAIAccess(mc, o.Getenv); err != nil {
				m.err = err
			} else {
				m.api = &client{access: access, http: o.HTTPClient, model: info.Model}
			}
			if info.Batch && m.api == nil {
				return nil, fmt.Errorf("batch executor: models.%s: %w", info.Name, m.err)
			}
			e.models[info.Name] = m
			p.Price = m.price
		}
		priced = append(priced, p)
	}
	e.meter = llm.NewMeter(priced)
	var entries []entry
	var err error
	if e.journal, entries, err = openJournal(o.RunDir); err != nil {
		return nil, err
	}
	if err := e.recover(ctx, entries); err != nil {
		e.journal.close()
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.stop = cancel
	e.wg.Go(func() { e.loop(lctx) })
	return e, nil
}

// Do returns the response to req from model: from the cache, from the job
// that holds it, from a new job, or, for a model whose calls do not go
// through the Batch API, from the local pool.
func (e *Executor) Do(ctx context.Context, name string, req llm.Request, sample int) (llm.Response, error) {
	m := e.models[name]
	batch := m != nil && m.info.Batch
	e.mu.Lock()
	anyLive := len(e.live) > 0
	e.mu.Unlock()
	if !batch && !anyLive {
		return e.localDo(ctx, name, req, sample)
	}
	key, err := e.local.CacheKey(name, req, sample)
	if err != nil {
		return e.localDo(ctx, name, req, sample)
	}
	if !batch {
		e.mu.Lock()
		_, held := e.live[key]
		e.mu.Unlock()
		if !held || m == nil {
			return e.localDo(ctx, name, req, sample)
		}
		// A job of an earlier invocation holds this call: wait for it
		// rather than pay for it twice.
	}
	url, body, err := llm.OpenAIBatchRequest(m.info.Model, req)
	if err != nil {
		e.meter.Call(name)
		e.meter.Failure(name)
		return llm.Response{}, fmt.Errorf("model %q: %w", name, err)
	}
	c, resp, local, err := e.join(name, m, key, url, body, batch)
	if local {
		return e.localDo(ctx, name, req, sample)
	}
	if err != nil || c == nil {
		return resp, err
	}
	select {
	case <-c.done:
		e.mu.Lock()
		e.waiting--
		e.mu.Unlock()
		if errors.Is(c.err, errRunLocally) {
			return e.localDo(ctx, name, req, sample)
		}
		if !batch {
			e.meter.Call(name) // answered by the job, not by the pool
		}
		if c.err != nil {
			return llm.Response{}, c.err
		}
		return c.resp, nil
	case <-ctx.Done():
		e.leave(c)
		e.meter.Canceled(name)
		return llm.Response{}, fmt.Errorf("model %q: %w", name, ctx.Err())
	}
}

// join registers a waiter for the call under key, queueing the call when
// no job holds it. It returns the response at once (and a nil call) when
// the cache has it, and local true when the call, of a model whose calls
// do not go through the Batch API, is no longer held by a job.
func (e *Executor) join(name string, m *model, key, url string, body []byte, batch bool) (*call, llm.Response, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.activity = time.Now()
	if e.closed {
		return nil, llm.Response{}, false, fmt.Errorf("model %q: the batch executor is closed", name)
	}
	c := e.calls[key]
	if c == nil && !batch && e.live[key] == nil {
		return nil, llm.Response{}, true, nil
	}
	if batch {
		e.meter.Call(name)
	}
	if c == nil {
		// Checked under the lock: a result is stored in the cache before
		// its call leaves e.calls, so a miss here means no job has
		// answered it.
		resp, found, err := e.cache.Get(key)
		if err != nil {
			e.log.Warn("response cache read failed; the call goes to a batch job", "model", name, "err", err)
		} else if found {
			if !batch {
				e.meter.Call(name)
			}
			e.meter.CacheHit(name)
			return nil, resp, false, nil
		}
		c = &call{key: key, model: m, url: url, done: make(chan struct{}), line: inputLine(key, url, body)}
		e.calls[key] = c
		if j := e.live[key]; j != nil {
			c.job = j
		} else {
			e.enqueue(c)
		}
	}
	c.waiters++
	e.waiting++
	e.wake()
	return c, llm.Response{}, false, nil
}

// inputLine is the JSONL line of a request.
func inputLine(key, url string, body []byte) []byte {
	b := make([]byte, 0, len(body)+len(key)+len(url)+64)
	b = append(b, `{"custom_id":"`...)
	b = append(b, key...) // hex: nothing to escape
	b = append(b, `","method":"POST","url":"`...)
	b = append(b, url...)
	b = append(b, `","body":`...)
	b = append(b, body...)
	return append(b, "}\n"...)
}

// queueKey names the queue of a call.
func queueKey(c *call) string { return c.model.info.Name + "\x00" + c.url }

// enqueue adds c to its model's queue. e.mu is held.
func (e *Executor) enqueue(c *call) {
	q := e.queues[queueKey(c)]
	if q == nil {
		q = &queue{model: c.model, url: c.url}
		e.queues[queueKey(c)] = q
	}
	c.dropped = false
	q.calls = append(q.calls, c)
	q.n++
	q.since = time.Now()
}

// leave removes a waiter that gave up; a queued call nobody waits for
// leaves its queue.
func (e *Executor) leave(c *call) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.waiting--
	c.waiters--
	if c.waiters == 0 && c.job == nil && !c.dropped && e.calls[c.key] == c {
		c.dropped = true
		delete(e.calls, c.key)
		if q := e.queues[queueKey(c)]; q != nil {
			q.n--
		}
	}
}

// localDo runs a call on the local pool, counting it as in flight.
func (e *Executor) localDo(ctx context.Context, name string, req llm.Request, sample int) (llm.Response, error) {
	e.mu.Lock()
	e.localBusy++
	e.activity = time.Now()
	e.mu.Unlock()
	resp, err := e.local.Do(ctx, name, req, sample)
	e.mu.Lock()
	e.localBusy--
	e.activity = time.Now()
	e.mu.Unlock()
	e.wake()
	return resp, err
}

// wake tells the loop that something changed.
func (e *Executor) wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Cached reports whether Do would answer the call from the cache.
func (e *Executor) Cached(model string, req llm.Request, sample int) bool {
	return e.local.Cached(model, req, sample)
}

// Stats returns every model's accounting: the local pool's for the
// models it runs, the batch jobs' (at the batch price) for the others.
func (e *Executor) Stats() map[string]llm.ModelStats {
	out := e.local.Stats()
	e.mu.Lock() // results are accounted under it, to the models and the jobs at once
	batch := e.meter.Stats()
	e.mu.Unlock()
	for name, s := range batch {
		if m := e.models[name]; m != nil && m.info.Batch {
			out[name] = s
		} else {
			out[name] = addStats(out[name], s) // results of earlier runs' jobs
		}
	}
	return out
}

// addStats adds b's counts to a's (the latencies stay a's).
func addStats(a, b llm.ModelStats) llm.ModelStats {
	a.Calls += b.Calls
	a.CacheHits += b.CacheHits
	a.Requests += b.Requests
	a.Retries += b.Retries
	a.Failures += b.Failures
	a.Canceled += b.Canceled
	a.CacheErrors += b.CacheErrors
	a.PromptTokens += b.PromptTokens
	a.CompletionTokens += b.CompletionTokens
	a.CostUSD += b.CostUSD
	for k, v := range b.Errors {
		if a.Errors == nil {
			a.Errors = map[string]int64{}
		}
		a.Errors[k] += v
	}
	return a
}

// Batches returns every job of the run directory, in the order they were
// recorded, with their status and request counts.
func (e *Executor) Batches() []pipeline.BatchInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]pipeline.BatchInfo, len(e.jobs))
	for i, j := range e.jobs {
		out[i] = pipeline.BatchInfo{
			ID: j.batchID, Local: j.local, Model: j.name, Status: j.status, Live: !j.over, InputFileID: j.fileID,
			Requests: len(j.keys), Completed: j.counts.Completed, Failed: j.counts.Failed,
			CostUSD: j.cost, Created: j.created,
		}
	}
	return out
}

// Detached is closed, when the executor was built with Detach, once the
// run waits for nothing but live jobs: every queue submitted, no other
// call in flight, and each live job polled at least once.
func (e *Executor) Detached() <-chan struct{} { return e.detached }

// Close stops the executor's work (a submission or collection cut short
// is taken up by the next run) and closes the journal. It is safe to call
// more than once.
func (e *Executor) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		e.stop()
		e.wg.Wait()
		err = e.journal.close()
	})
	return err
}
