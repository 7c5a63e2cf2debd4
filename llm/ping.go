package llm

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// PingResult is the outcome of Pool.Ping for one model.
type PingResult struct {
	Model ModelInfo
	// Status is ok, model missing, auth error, unreachable, timeout, rate
	// limited or error.
	Status  string
	Latency time.Duration
	// Err is the failure, naming the model; nil when Status is ok.
	Err error
}

// Ping sends one tiny request (two tokens, greedy) to the model called
// name, through the pool's limits and retry policy but not its cache, and
// classifies the outcome. timeout > 0 bounds it.
func (p *Pool) Ping(ctx context.Context, name string, timeout time.Duration) PingResult {
	info, ok := p.Info(name)
	if !ok {
		return PingResult{Status: "error", Err: p.unknown(name)}
	}
	req := Request{Prompt: "Once upon a time", MaxTokens: 2}
	if info.Style == StyleChat {
		req = Request{Messages: []Message{{Role: "user", Content: "Say OK."}}, MaxTokens: 2}
	}
	cctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	m := p.byName[name]
	m.stats.call()
	resp, err := p.call(cctx, m, req)
	r := PingResult{Model: info, Latency: time.Since(start), Err: err}
	if err == nil {
		r.Status, r.Latency = "ok", resp.Latency
		return r
	}
	r.Err = fmt.Errorf("model %q: %w", name, err)
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		r.Err = fmt.Errorf("model %q: no reply within %v (raise the timeout for a model that is slow to load): %w", name, timeout, ErrTimeout)
	}
	r.Status = pingStatus(err)
	return r
}

// pingStatus names the kind of a failed ping.
func pingStatus(err error) string {
	switch {
	case errors.Is(err, ErrModelNotFound):
		return "model missing"
	case errors.Is(err, ErrAuth):
		return "auth error"
	case errors.Is(err, ErrUnreachable):
		return "unreachable"
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrRateLimited):
		return "rate limited"
	}
	return "error"
}
