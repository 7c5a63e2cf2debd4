package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Pool is the set of named models every stage calls. Do sends one request
// to one model by name, and adds what a bare Model lacks: the response
// cache, the limits of the model's endpoint (concurrency, requests and
// tokens per minute, per-call timeout), retries with backoff, and
// accounting. A Pool is safe for concurrent use; build it with NewPool.
type Pool struct {
	models []*member // config order
	byName map[string]*member
	retry  RetryConfig
	cache  *Cache
	log    *slog.Logger
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
	jitter func() float64
}

// member is one model of the pool.
type member struct {
	info       ModelInfo
	backend    Model
	ep         *endpoint
	queue      int    // the model's queue index at its endpoint
	endpointID string // for CacheKey
	modelKey   string // for CacheKey
	stats      *recorder
	// dial is set for a backend the table built (not a WithBackend
	// override): the preflight dials its endpoint.
	dial bool
	// missingKey names the unset API key variable of a model that needs
	// one; its calls fail with ErrAuth.
	missingKey string
	// redact removes the model's secrets from what its server sends back.
	redact *redactor
	// warnedTruncated is set once the model's first truncated prompt was
	// reported.
	warnedTruncated atomic.Bool
}

// Option configures NewPool.
type Option func(*poolOptions)

type poolOptions struct {
	client   *http.Client
	logger   *slog.Logger
	cache    *Cache
	getenv   func(string) string
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
	jitter   func() float64
	backends map[string]Model
}

// WithHTTPClient makes every backend use c (default: a client tuned for
// many concurrent requests per host). Timeouts come from the endpoint
// configuration through each call's context, not from c.
func WithHTTPClient(c *http.Client) Option { return func(o *poolOptions) { o.client = c } }

// WithLogger sends the pool's logs (retries, cache write failures) to l
// (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(o *poolOptions) { o.logger = l } }

// WithCache makes Do look responses up in c before calling a model and
// store every successful response in it (default: no cache). The pool does
// not close c.
func WithCache(c *Cache) Option { return func(o *poolOptions) { o.cache = c } }

// WithGetenv sets how the pool reads API keys, OLLAMA_HOST and ${NAME}
// references in headers (default: os.Getenv). It is called only in
// NewPool.
func WithGetenv(f func(string) string) Option { return func(o *poolOptions) { o.getenv = f } }

// WithClock replaces the clock and the sleep the pool uses for backoff,
// Retry-After pauses and rate limits; sleep must return ctx.Err() early
// when ctx is done. For tests.
func WithClock(now func() time.Time, sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(o *poolOptions) { o.now, o.sleep = now, sleep }
}

// WithJitter replaces the source of backoff jitter, a function returning a
// number in [0, 1) (default: math/rand/v2). For tests.
func WithJitter(f func() float64) Option { return func(o *poolOptions) { o.jitter = f } }

// WithBackend makes the model called name use m instead of the client its
// configuration describes; everything else (limits, retries, cache,
// accounting) applies as usual. For tests and for custom backends.
func WithBackend(name string, m Model) Option {
	return func(o *poolOptions) {
		if o.backends == nil {
			o.backends = map[string]Model{}
		}
		o.backends[name] = m
	}
}

// runtimeOptions are Ollama options that change how fast a model runs, not
// what it writes; they are left out of cache keys.
var runtimeOptions = []string{"num_thread", "num_gpu", "main_gpu", "use_mmap", "use_mlock", "numa", "low_vram", "num_batch"}

// NewPool validates cfg, applies the defaults and builds a client for every
// model. Models on the same endpoint URL share one set of limits. It fails
// on an invalid configuration, an endpoints entry no model uses, or a
// header referencing an unset variable. An OpenAI-compatible model whose
// key variable is unset (and whose server is not local) does not fail
// here: each of its calls fails at once with ErrAuth naming the variable.
func NewPool(cfg Config, opts ...Option) (*Pool, error) {
	o := poolOptions{getenv: os.Getenv, now: time.Now, sleep: sleepCtx, jitter: rand.Float64}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Models) == 0 {
		return nil, errors.New("models: no models configured")
	}
	for name := range o.backends {
		if _, ok := cfg.Models.Get(name); !ok {
			return nil, fmt.Errorf("backend given for %q, which is not a configured model", name)
		}
	}
	p := &Pool{
		byName: make(map[string]*member, len(cfg.Models)),
		retry:  cfg.Retry.withDefaults(),
		cache:  o.cache,
		log:    o.logger,
		now:    o.now,
		sleep:  o.sleep,
		jitter: o.jitter,
	}

	// Resolve the models and group them by endpoint.
	type group struct {
		url     string
		backend Backend
		members []*member
	}
	var groups []*group
	byURL := map[string]*group{}
	resolved := make([]ModelConfig, len(cfg.Models))
	for i, nm := range cfg.Models {
		mc, err := nm.ModelConfig.withDefaults(o.getenv)
		if err != nil {
			return nil, underModel(nm.Name, err)
		}
		resolved[i] = mc
		m := &member{
			info: ModelInfo{
				Name: nm.Name, Backend: mc.Backend, Model: mc.Model, Endpoint: redactURL(mc.Endpoint),
				Roles: slices.Clone(mc.Roles), Weight: mc.Weight, Style: mc.Style,
				Options: outputOptions(mc.Options), Price: mc.Price, Batch: mc.Batch,
			},
			endpointID: EndpointID(mc.Backend, mc.Endpoint),
			modelKey:   modelKey(mc),
			stats:      newRecorder(nm.Name, mc.Price),
		}
		g := byURL[mc.Endpoint]
		if g == nil {
			g = &group{url: mc.Endpoint, backend: mc.Backend}
			byURL[mc.Endpoint] = g
			groups = append(groups, g)
		}
		m.queue = len(g.members)
		g.members = append(g.members, m)
		p.models = append(p.models, m)
		p.byName[nm.Name] = m
	}

	// Attach the endpoint limits.
	epCfg := map[string]EndpointConfig{}
	for k, v := range cfg.Endpoints {
		n, _ := normalizeURL(k) // Validate checked it
		if byURL[n] == nil {
			var used []string
			for _, g := range groups {
				used = append(used, redactURL(g.url))
			}
			return nil, fmt.Errorf("endpoints.%s: no model uses this endpoint (models use %s)", k, strings.Join(used, ", "))
		}
		epCfg[n] = v
	}
	perHost, busiest := map[string]int{}, 0
	for _, g := range groups {
		ec := epCfg[g.url].withDefaults(g.backend)
		ep := newEndpoint(redactURL(g.url), ec, len(g.members))
		for _, m := range g.members {
			m.ep = ep
		}
		if u, err := url.Parse(g.url); err == nil {
			perHost[u.Host] += ec.MaxConcurrent
			busiest = max(busiest, perHost[u.Host])
		}
	}
	if o.client == nil {
		o.client = newHTTPClientFor(busiest)
	}

	// Build the backends.
	for i, m := range p.models {
		mc := resolved[i]
		if b, ok := o.backends[m.info.Name]; ok {
			m.backend = b
			continue
		}
		hdr, secrets, err := expandHeaders(mc.Headers, o.getenv)
		if err != nil {
			return nil, underModel(m.info.Name, err)
		}
		mc.Headers = hdr
		spec, _ := lookupBackend(mc.Backend) // Validate checked it
		var key string
		if spec.keyEnv != "" {
			key = o.getenv(mc.APIKeyEnv)
			if key == "" && !isLocalHost(mc.Endpoint) {
				m.missingKey = mc.APIKeyEnv
				m.redact = newRedactor(secrets...)
				m.backend = missingKey{backend: mc.Backend, endpoint: m.info.Endpoint, model: mc.Model, env: mc.APIKeyEnv}
				continue
			}
		}
		b, err := spec.build(mc, o.client, key)
		if err != nil {
			return nil, fmt.Errorf("models.%s: %w", m.info.Name, err)
		}
		m.backend = b
		m.redact = newRedactor(append(secrets, key)...)
		m.dial = true
	}
	return p, nil
}

// underModel puts a model's field error under models.NAME.
func underModel(name string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{Path: append([]string{"models", name}, fe.Path...), Msg: fe.Msg}
	}
	return fmt.Errorf("models.%s: %w", name, err)
}

// MissingKeys returns, for every model whose API key variable is unset
// (and whose server is not local), an error naming the model and the
// variable to set: a preflight that a run can fail on before any call.
func (p *Pool) MissingKeys() error {
	var errs []error
	for _, m := range p.models {
		if m.missingKey != "" {
			errs = append(errs, FieldErrorf([]string{"models", m.info.Name, "api_key_env"},
				"environment variable %s is not set; export it with the API key for %s", m.missingKey, m.info.Endpoint))
		}
	}
	return errors.Join(errs...)
}

// outputOptions returns the options that change a model's output.
func outputOptions(opts map[string]any) map[string]any {
	var out map[string]any
	for k, v := range opts {
		if !slices.Contains(runtimeOptions, k) {
			if out == nil {
				out = make(map[string]any)
			}
			out[k] = v
		}
	}
	return out
}

// modelKey is the model part of a cache key: the model name, plus the
// configured Ollama options that change the output, in a canonical order.
func modelKey(mc ModelConfig) string {
	var keys []string
	for k := range mc.Options {
		if !slices.Contains(runtimeOptions, k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return mc.Model
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(mc.Model)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, mc.Options[k])
	}
	return b.String()
}

// Models returns the names of the models that have role r, in
// configuration order; r == "" returns every model.
func (p *Pool) Models(r Role) []string {
	var names []string
	for _, m := range p.models {
		if r == "" || m.info.HasRole(r) {
			names = append(names, m.info.Name)
		}
	}
	return names
}

// All returns every model's description, in configuration order.
func (p *Pool) All() []ModelInfo {
	out := make([]ModelInfo, len(p.models))
	for i, m := range p.models {
		out[i] = m.info.clone()
	}
	return out
}

// Info returns the description of the model called name.
func (p *Pool) Info(name string) (ModelInfo, bool) {
	m, ok := p.byName[name]
	if !ok {
		return ModelInfo{}, false
	}
	return m.info.clone(), true
}

// CacheKey returns the key Do uses for the cache entry of this call.
func (p *Pool) CacheKey(model string, req Request, sample int) (string, error) {
	m, ok := p.byName[model]
	if !ok {
		return "", p.unknown(model)
	}
	return CacheKey(m.endpointID, m.modelKey, req, sample), nil
}

func (p *Pool) unknown(name string) error {
	return fmt.Errorf("%w: no model named %q in the pool (have %s)", ErrBadRequest, name, strings.Join(p.Models(""), ", "))
}

// Capacity returns the calls the models with role r can have in flight
// at once: the sum of max_concurrent over the distinct endpoints that
// serve them (r == "" counts every endpoint).
func (p *Pool) Capacity(r Role) int {
	seen := map[*endpoint]bool{}
	n := 0
	for _, m := range p.models {
		if (r == "" || m.info.HasRole(r)) && !seen[m.ep] {
			seen[m.ep] = true
			n += m.ep.cfg.MaxConcurrent
		}
	}
	return n
}

// Cache returns the pool's response cache, or nil.
func (p *Pool) Cache() *Cache { return p.cache }

// Cached reports whether Do would answer this call from the response
// cache, without counting it as a call.
func (p *Pool) Cached(model string, req Request, sample int) bool {
	m, ok := p.byName[model]
	if !ok || p.cache == nil {
		return false
	}
	found, err := p.cache.Has(CacheKey(m.endpointID, m.modelKey, req, sample))
	return err == nil && found
}

// Stats returns a snapshot of every model's accounting, by name.
func (p *Pool) Stats() map[string]ModelStats {
	out := make(map[string]ModelStats, len(p.models))
	for _, m := range p.models {
		out[m.info.Name] = m.stats.snapshot()
	}
	return out
}

// Do sends req to the model called name and returns its response.
//
// With a cache, a response stored under the call's key (endpoint, model,
// request, sample) is returned at once with Cached set. Otherwise Do waits
// for a slot and for the rate limits of the model's endpoint, calls the
// backend with the endpoint's timeout, and on a transient failure (429,
// 5xx, timeout, unreachable, truncated or invalid reply) releases the slot,
// waits out an exponential backoff with jitter (or the server's
// Retry-After, if longer; a Retry-After also pauses the whole endpoint) and
// tries again, up to the configured attempts. Other failures return at
// once. A successful response is stored in the cache before Do returns
// (committed, or queued for a write-behind cache's next commit); failures
// never are.
//
// sample distinguishes repeated samples of the same request: it is part of
// the cache key only. Cancelling ctx stops any wait and the call in flight;
// the error then wraps ctx.Err().
func (p *Pool) Do(ctx context.Context, name string, req Request, sample int) (Response, error) {
	m, ok := p.byName[name]
	if !ok {
		return Response{}, p.unknown(name)
	}
	m.stats.call()
	if err := req.validate(); err != nil {
		m.stats.failure()
		return Response{}, fmt.Errorf("model %q: %w: %w", name, ErrBadRequest, err)
	}
	var key string
	if p.cache != nil {
		key = CacheKey(m.endpointID, m.modelKey, req, sample)
		resp, found, err := p.cache.Get(key)
		if err != nil {
			p.log.Warn("response cache read failed; calling the model", "model", name, "err", err)
		} else if found {
			m.stats.cacheHit()
			return resp, nil
		}
	}
	resp, err := p.call(ctx, m, req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			// The caller gave up on the call (or the run was cut short):
			// not the model's failure.
			m.stats.canceled()
		} else {
			m.stats.failure()
		}
		return Response{}, fmt.Errorf("model %q: %w", name, err)
	}
	if p.cache != nil {
		if err := p.cache.Put(key, resp); err != nil {
			m.stats.cacheError()
			p.log.Error("response cache write failed", "model", name, "err", err)
		}
	}
	return resp, nil
}

// call is the retry loop of Do.
func (p *Pool) call(ctx context.Context, m *member, req Request) (Response, error) {
	ep := m.ep
	est := estimateTokens(req)
	for attempt := 1; ; attempt++ {
		if err := ep.waitPause(ctx, p.now, p.sleep); err != nil {
			return Response{}, err
		}
		if err := ep.slots.acquire(ctx, m.queue); err != nil {
			return Response{}, err
		}
		if err := ep.waitRate(ctx, est, p.now, p.sleep); err != nil {
			ep.slots.release()
			return Response{}, err
		}
		m.stats.attempt(attempt > 1)
		t := ep.begin(p.now())
		resp, err := p.attempt(ctx, m, req)
		ep.end(ctx, t, p.now(), err)
		if err == nil {
			if extra := resp.PromptTokens + resp.CompletionTokens - est; extra > 0 {
				ep.chargeTokens(extra, p.now())
			}
			m.stats.success(resp)
			if resp.Truncated && !m.warnedTruncated.Swap(true) {
				p.log.Warn("the server cut a prompt to fit its context window; raise the model's max_context (or options.num_ctx)",
					"model", m.info.Name, "prompt_tokens", resp.PromptTokens)
			}
			return resp, nil
		}
		if ctx.Err() != nil {
			m.stats.attemptFailed("canceled")
			return Response{}, ctx.Err()
		}
		m.stats.attemptFailed(errorKind(err))
		var retryAfter time.Duration
		var se *StatusError
		if errors.As(err, &se) && se.RetryAfter > 0 {
			// The server asked every client to hold off: no request to
			// this endpoint starts before then, whichever model it is for.
			retryAfter = se.RetryAfter
			ep.pause(p.now().Add(retryAfter))
		}
		if !retryable(err) || attempt >= p.retry.MaxAttempts {
			if attempt > 1 {
				return Response{}, fmt.Errorf("giving up after %d attempts: %w", attempt, err)
			}
			return Response{}, err
		}
		wait := p.backoff(attempt, retryAfter)
		p.log.Warn("model call failed; retrying",
			"model", m.info.Name, "attempt", attempt, "max_attempts", p.retry.MaxAttempts,
			"wait", wait, "err", err)
		if err := p.sleep(ctx, wait); err != nil {
			return Response{}, err
		}
	}
}

// attempt makes one backend call under the endpoint's timeout.
func (p *Pool) attempt(ctx context.Context, m *member, req Request) (Response, error) {
	actx, cancel := context.WithTimeout(ctx, m.ep.cfg.Timeout)
	defer cancel()
	resp, err := m.backend.Generate(actx, req)
	err = m.redact.scrub(err)
	if err != nil && ctx.Err() == nil && actx.Err() == context.DeadlineExceeded && !errors.Is(err, ErrTimeout) {
		err = &callError{m.info.Backend, m.info.Endpoint, m.info.Model, ErrTimeout,
			fmt.Errorf("no reply within %v", m.ep.cfg.Timeout)}
	}
	return resp, err
}

// backoff returns the wait before retry number attempt (1 = the first
// retry): a random duration in [b/2, b] with b = min(initial·2^(attempt-1),
// max), or retryAfter if that is longer.
func (p *Pool) backoff(attempt int, retryAfter time.Duration) time.Duration {
	b := p.retry.InitialBackoff
	for i := 1; i < attempt && b < p.retry.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, p.retry.MaxBackoff)
	d := b/2 + time.Duration(p.jitter()*float64(b-b/2))
	return max(d, retryAfter)
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
