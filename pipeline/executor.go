package pipeline

import (
	"context"
	"errors"
	"math"
	"sync"

	"github.com/ensinstruct/ensinstruct/llm"
)

// Executor runs model calls. Every call of a run goes through one,
// identified by the model's name, the request and a sample index; the
// executor owns the response cache, limits and retries. *llm.Pool is the
// local executor; the distributed and batch executors satisfy the same
// interface and fill the same cache keys, so determinism and resume work
// the same way with all of them.
//
// An executor may also implement CacheChecker (so that budgets do not
// count calls it will answer from its cache) and StatsReporter (so that
// the manifest and progress report its accounting).
type Executor interface {
	Do(ctx context.Context, model string, req llm.Request, sample int) (llm.Response, error)
}

// CacheChecker is implemented by executors that can tell, without making
// the call, that Do would answer it from a cache.
type CacheChecker interface {
	Cached(model string, req llm.Request, sample int) bool
}

// StatsReporter is implemented by executors that account for their calls
// per model.
type StatsReporter interface {
	Stats() map[string]llm.ModelStats
}

// BatchReporter is implemented by executors that run calls in a
// provider's batch jobs: the manifest and progress list the jobs.
type BatchReporter interface {
	Batches() []BatchInfo
}

// Detacher is implemented by executors that can leave their calls
// pending elsewhere (in batch jobs) and let the process go: the channel
// is closed when nothing but such calls is left to wait for. The run then
// stops with ErrDetached, its output left unfinished, and the same
// command started again later collects the results and goes on.
type Detacher interface {
	Detached() <-chan struct{}
}

// ErrDetached is the error of a run that stopped while its remaining
// calls are pending in batch jobs (see Detacher).
var ErrDetached = errors.New("detached while model calls are pending in batch jobs; run the same command again to collect them")

// ErrBudget is the error of a call that the run's budget refused to
// start. The pipeline treats it as a clean stop, not a failure.
var ErrBudget = errors.New("budget spent")

// Limits are a run's hard budget: caps that are never exceeded, not
// targets that are checked after the fact. Zero fields mean no limit.
type Limits struct {
	// MaxRequests caps the calls that reach a server, counting those in
	// flight; calls answered from the cache are free. A call retried by
	// the executor counts once.
	MaxRequests int64 `json:"max_requests,omitempty" yaml:"max_requests"`
	// MaxCostUSD caps the cost at the models' prices. Before a call
	// starts, its worst case (every byte of the prompt a token, plus the
	// request's max_tokens, at the model's price) is reserved; when it
	// returns, the unused part is released.
	MaxCostUSD float64 `json:"max_cost_usd,omitempty" yaml:"max_cost_usd"`
}

// Active reports whether any limit is set.
func (l Limits) Active() bool { return l.MaxRequests > 0 || l.MaxCostUSD > 0 }

// Gate is an Executor that enforces Limits around another executor, and
// a Budget that reports when no further call can start. It is safe for
// concurrent use. Build one with NewGate.
type Gate struct {
	exec   Executor
	cached CacheChecker // nil: every call counts
	prices map[string]llm.Price
	limits Limits

	mu       sync.Mutex
	requests int64         // calls started that were not cache hits
	spent    float64       // cost of the calls that returned
	reserved float64       // worst cost of the calls in flight
	released chan struct{} // closed (and replaced) when a reservation ends
}

// NewGate returns a Gate over exec with the prices the models' calls are
// charged at (llm.ModelInfo.CallPrice: the batch price for a model whose
// calls go through a Batch API).
func NewGate(exec Executor, models []llm.ModelInfo, limits Limits) *Gate {
	g := &Gate{exec: exec, limits: limits, prices: make(map[string]llm.Price, len(models)), released: make(chan struct{})}
	g.cached, _ = exec.(CacheChecker)
	for _, m := range models {
		g.prices[m.Name] = m.CallPrice()
	}
	return g
}

// Do starts the call if the limits allow it, or returns an error matching
// ErrBudget. A call whose worst cost does not fit next to the
// reservations of the calls in flight waits for them to return (they
// usually cost less than their worst case); it is refused only when it
// could not fit even with nothing in flight.
func (g *Gate) Do(ctx context.Context, model string, req llm.Request, sample int) (llm.Response, error) {
	if g.cached != nil && g.cached.Cached(model, req, sample) {
		return g.exec.Do(ctx, model, req, sample)
	}
	worst := g.cost(model, worstPromptTokens(req), worstCompletionTokens(req))
	for {
		g.mu.Lock()
		if g.limits.MaxRequests > 0 && g.requests >= g.limits.MaxRequests {
			g.mu.Unlock()
			return llm.Response{}, ErrBudget
		}
		max := g.limits.MaxCostUSD
		if max <= 0 || g.spent+g.reserved+worst <= max {
			break // still locked
		}
		if g.spent+worst > max {
			g.mu.Unlock()
			return llm.Response{}, ErrBudget
		}
		wait := g.released
		g.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return llm.Response{}, ctx.Err()
		}
	}
	g.requests++
	g.reserved += worst
	g.mu.Unlock()

	resp, err := g.exec.Do(ctx, model, req, sample)

	g.mu.Lock()
	g.reserved -= worst
	switch {
	case err == nil && resp.Cached:
		g.requests-- // answered from a cache after all: free
	case err == nil:
		g.spent += g.cost(model, resp.PromptTokens, resp.CompletionTokens)
	}
	close(g.released)
	g.released = make(chan struct{})
	g.mu.Unlock()
	return resp, err
}

// Exhausted reports whether the limits leave room for no further call:
// every request is spent, or the money is.
func (g *Gate) Exhausted() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return (g.limits.MaxRequests > 0 && g.requests >= g.limits.MaxRequests) ||
		(g.limits.MaxCostUSD > 0 && g.spent >= g.limits.MaxCostUSD)
}

// Spent returns the requests started and the cost of those that returned.
func (g *Gate) Spent() (requests int64, costUSD float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests, g.spent
}

// Cached passes the question on to the wrapped executor.
func (g *Gate) Cached(model string, req llm.Request, sample int) bool {
	return g.cached != nil && g.cached.Cached(model, req, sample)
}

func (g *Gate) cost(model string, prompt, completion int) float64 {
	p := g.prices[model]
	return (float64(prompt)*p.PromptPerMillion + float64(completion)*p.CompletionPerMillion) / 1e6
}

// worstPromptTokens bounds the prompt's tokens from above: no tokenizer
// spends less than a byte on a token, and a chat template adds a few
// tokens around every message.
func worstPromptTokens(req llm.Request) int {
	n := len(req.Prompt) + 32
	for _, m := range req.Messages {
		n += len(m.Content) + len(m.Role) + 16
	}
	return n
}

// worstCompletionTokens is the request's max_tokens, or a large bound
// when it sets none (the backend's default then applies).
func worstCompletionTokens(req llm.Request) int {
	if req.MaxTokens > 0 {
		return req.MaxTokens
	}
	return math.MaxInt32 / 1024
}
