// Package llm talks to language models for the pipeline: the
// OpenAI-compatible and Ollama clients, the pool of named models with roles
// and per-endpoint limits, retries, the response cache and token and cost
// accounting. It knows nothing about the stages of the method.
//
// # Models and the pool
//
// A Model sends one request to one backend, once: *Ollama speaks Ollama's
// native API (/api/generate with raw prompts for completion-style requests,
// /api/chat for chat), *OpenAI speaks any OpenAI-compatible API
// (/completions and /chat/completions) through
// github.com/sashabaranov/go-openai. A Request carries either a Prompt or
// Messages plus the sampling settings; a Response carries the text, the
// finish reason, token counts and latency.
//
// A Pool, built by NewPool from a Config, holds named models with roles
// (instructions, instances, ensemble) and weights. Pool.Do calls a model by
// name and adds, in order: the response cache; the limits of the model's
// endpoint, shared by every model that endpoint serves (a concurrency limit
// that serves the endpoint's models in turn, fixed or adapting to the
// server with max_concurrent: auto, requests and tokens per minute, a
// per-call timeout); retries with exponential backoff and jitter on
// transient failures, honouring Retry-After; and accounting (Pool.Stats).
// Concurrency is bounded per endpoint, not per caller, so a slow hosted
// model never starves a fast local one. The concurrency slot is never held
// while waiting out a backoff.
//
// # Errors
//
// Failed calls wrap one sentinel: ErrRateLimited, ErrServer, ErrTimeout,
// ErrUnreachable and ErrBadResponse are transient and retried;
// ErrModelNotFound, ErrAuth and ErrBadRequest fail at once. HTTP error
// statuses are *StatusError values naming the endpoint, the model, the
// status and what to do (`ollama pull NAME`, check $OPENAI_API_KEY). A
// cancelled context yields an error wrapping context.Canceled. API keys are
// read from the environment only and never appear in errors, logs, cache
// keys, statistics or Config.String.
//
// # The response cache
//
// The cache is a single bbolt file (go.etcd.io/bbolt): pure Go, so the
// binary stays cgo-free; one file, easy to keep in a run directory and
// copy; a copy-on-write B+tree whose committed transactions survive a
// killed process (a SIGKILL in the middle of a write leaves every earlier
// commit readable); an exclusive file lock, so a second process opening the
// same cache gets a clear error instead of corrupting it; and reads served
// from a memory map without copying. Keys are CacheKey hashes of (endpoint
// identity, model, the full request, sample index); values are Responses as
// JSON. Only successful responses are stored.
package llm
