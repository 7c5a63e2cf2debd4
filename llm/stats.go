package llm

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// ModelStats is the accounting of one model in a Pool, as Pool.Stats
// returns it: a plain value, ready for a progress report or the run
// manifest. Tokens, latency and cost count only calls the backend served
// in this process; cache hits cost nothing and are counted apart.
type ModelStats struct {
	// Calls is the number of Pool.Do calls, cache hits included.
	Calls int64 `json:"calls"`
	// CacheHits is the number of calls served from the response cache.
	CacheHits int64 `json:"cache_hits"`
	// Requests is the number of backend calls made (every attempt).
	Requests int64 `json:"requests"`
	// Retries is the number of attempts after the first.
	Retries int64 `json:"retries"`
	// Failures is the number of Pool.Do calls that returned an error,
	// not counting those the caller cancelled.
	Failures int64 `json:"failures"`
	// Canceled is the number of Pool.Do calls abandoned because their
	// context was cancelled (for example when a run reached its target).
	Canceled int64 `json:"canceled,omitempty"`
	// Errors counts failed attempts by kind: rate_limited, server, timeout,
	// unreachable, bad_response, model_not_found, auth, bad_request,
	// canceled, other.
	Errors map[string]int64 `json:"errors,omitempty"`
	// CacheErrors counts responses that could not be stored in the cache.
	CacheErrors int64 `json:"cache_errors,omitempty"`
	// Truncated counts served responses whose prompt the server cut to
	// fit its context window (Response.Truncated).
	Truncated int64 `json:"truncated,omitempty"`
	// PromptTokens and CompletionTokens sum the backend's token counts.
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	// LatencyP50Ms, LatencyP90Ms and LatencyP99Ms are percentiles of the
	// latency of successful backend calls, in milliseconds, over a uniform
	// sample of at most 1024 calls.
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP90Ms float64 `json:"latency_p90_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	// CostUSD is the cost of the tokens at the model's configured price.
	CostUSD float64 `json:"cost_usd"`
}

// reservoirSize bounds the latency samples kept per model.
const reservoirSize = 1024

// recorder accumulates one model's statistics. It is safe for concurrent
// use.
type recorder struct {
	price Price

	mu     sync.Mutex
	s      ModelStats
	seen   int64 // latencies offered to the reservoir
	sample []time.Duration
	rng    *rand.Rand
}

func newRecorder(name string, price Price) *recorder {
	var seed uint64 = 14695981039346656037 // FNV-1a of the name: a fixed, per-model sample
	for i := 0; i < len(name); i++ {
		seed = (seed ^ uint64(name[i])) * 1099511628211
	}
	return &recorder{price: price, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (r *recorder) call() {
	r.mu.Lock()
	r.s.Calls++
	r.mu.Unlock()
}

func (r *recorder) cacheHit() {
	r.mu.Lock()
	r.s.CacheHits++
	r.mu.Unlock()
}

func (r *recorder) cacheError() {
	r.mu.Lock()
	r.s.CacheErrors++
	r.mu.Unlock()
}

func (r *recorder) canceled() {
	r.mu.Lock()
	r.s.Canceled++
	r.mu.Unlock()
}

func (r *recorder) failure() {
	r.mu.Lock()
	r.s.Failures++
	r.mu.Unlock()
}

// attempt records one backend call; retry says it was not the first.
func (r *recorder) attempt(retry bool) {
	r.mu.Lock()
	r.s.Requests++
	if retry {
		r.s.Retries++
	}
	r.mu.Unlock()
}

func (r *recorder) attemptFailed(kind string) {
	r.mu.Lock()
	if r.s.Errors == nil {
		r.s.Errors = make(map[string]int64)
	}
	r.s.Errors[kind]++
	r.mu.Unlock()
}

func (r *recorder) success(resp Response) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if resp.Truncated {
		r.s.Truncated++
	}
	r.s.PromptTokens += int64(resp.PromptTokens)
	r.s.CompletionTokens += int64(resp.CompletionTokens)
	r.s.CostUSD += (float64(resp.PromptTokens)*r.price.PromptPerMillion +
		float64(resp.CompletionTokens)*r.price.CompletionPerMillion) / 1e6
	r.seen++
	if len(r.sample) < reservoirSize {
		r.sample = append(r.sample, resp.Latency)
	} else if j := r.rng.Int64N(r.seen); j < reservoirSize {
		r.sample[j] = resp.Latency
	}
}

// snapshot returns a copy of the statistics with the percentiles computed.
func (r *recorder) snapshot() ModelStats {
	r.mu.Lock()
	s := r.s
	if r.s.Errors != nil {
		s.Errors = make(map[string]int64, len(r.s.Errors))
		for k, v := range r.s.Errors {
			s.Errors[k] = v
		}
	}
	lat := slices.Clone(r.sample)
	r.mu.Unlock()
	slices.Sort(lat)
	s.LatencyP50Ms = percentileMs(lat, 0.50)
	s.LatencyP90Ms = percentileMs(lat, 0.90)
	s.LatencyP99Ms = percentileMs(lat, 0.99)
	return s
}

// percentileMs is the nearest-rank percentile of sorted, in milliseconds.
func percentileMs(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

// Meter accounts for calls per model exactly as a Pool does, for
// executors that run calls elsewhere (on other machines, in batch jobs)
// and report them in the same form. The zero value is not usable; build
// one with NewMeter. It is safe for concurrent use.
type Meter struct {
	order  []string
	byName map[string]*recorder
}

// NewMeter returns a Meter for the models, charging their prices.
func NewMeter(models []ModelInfo) *Meter {
	m := &Meter{byName: make(map[string]*recorder, len(models))}
	for _, mi := range models {
		m.order = append(m.order, mi.Name)
		m.byName[mi.Name] = newRecorder(mi.Name, mi.Price)
	}
	return m
}

func (m *Meter) rec(model string) *recorder {
	if r, ok := m.byName[model]; ok {
		return r
	}
	return newRecorder(model, Price{}) // unknown models are not accounted
}

// Call counts a call, cache hits included.
func (m *Meter) Call(model string) { m.rec(model).call() }

// CacheHit counts a call answered from a cache.
func (m *Meter) CacheHit(model string) { m.rec(model).cacheHit() }

// Attempt counts one backend request; retry says it was not the first.
func (m *Meter) Attempt(model string, retry bool) { m.rec(model).attempt(retry) }

// AttemptFailed counts a failed request by kind (see ModelStats.Errors).
func (m *Meter) AttemptFailed(model, kind string) { m.rec(model).attemptFailed(kind) }

// Success accounts for a served response: tokens, cost, latency.
func (m *Meter) Success(model string, resp Response) { m.rec(model).success(resp) }

// Failure counts a call that failed for good.
func (m *Meter) Failure(model string) { m.rec(model).failure() }

// Canceled counts a call its caller gave up on.
func (m *Meter) Canceled(model string) { m.rec(model).canceled() }

// Stats returns a snapshot of every model's accounting, by name.
func (m *Meter) Stats() map[string]ModelStats {
	out := make(map[string]ModelStats, len(m.order))
	for _, name := range m.order {
		out[name] = m.byName[name].snapshot()
	}
	return out
}

// ErrorKind names the kind of a failed call as ModelStats.Errors counts
// it: rate_limited, server, timeout, unreachable, bad_response,
// model_not_found, auth, bad_request, canceled or other.
func ErrorKind(err error) string { return errorKind(err) }

// Retryable reports whether a failed call is worth repeating (the
// transient sentinels: ErrRateLimited, ErrServer, ErrTimeout,
// ErrUnreachable, ErrBadResponse).
func Retryable(err error) bool { return retryable(err) }
