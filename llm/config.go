package llm

import (
	"encoding/json"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults applied by NewPool to what a Config leaves unset.
const (
	// DefaultOllamaURL is the Ollama endpoint when neither the model's
	// endpoint nor OLLAMA_HOST is set.
	DefaultOllamaURL = "http://localhost:11434"
	// DefaultOpenAIURL is the OpenAI-compatible base URL when the model
	// sets none.
	DefaultOpenAIURL = "https://api.openai.com/v1"
	// DefaultAPIKeyEnv is the variable the OpenAI-compatible backend reads
	// its key from when the model sets no api_key_env.
	DefaultAPIKeyEnv = "OPENAI_API_KEY"

	// DefaultOllamaConcurrency is max_concurrent for an Ollama endpoint:
	// Ollama queues what it cannot run in parallel, and a second request in
	// flight keeps the server busy between replies without making queued
	// requests wait long enough to hit the timeout.
	DefaultOllamaConcurrency = 2
	// DefaultOpenAIConcurrency is max_concurrent for an OpenAI-compatible
	// endpoint: hosted APIs serve many requests at once, and their rate
	// limits (requests_per_minute, tokens_per_minute) are the real bound.
	DefaultOpenAIConcurrency = 8

	// DefaultOllamaTimeout bounds one call to a local model: generous,
	// because the first call loads the model and CPUs generate slowly.
	DefaultOllamaTimeout = 10 * time.Minute
	// DefaultOpenAITimeout bounds one call to a hosted model.
	DefaultOpenAITimeout = 2 * time.Minute

	// DefaultOllamaMaxContext caps the context window an Ollama request
	// asks for when the model sets no max_context.
	DefaultOllamaMaxContext = 32768

	// DefaultMaxAttempts is the number of tries per call, the first included.
	DefaultMaxAttempts = 6
	// DefaultInitialBackoff is the wait before the first retry; it doubles
	// for each further retry.
	DefaultInitialBackoff = 500 * time.Millisecond
	// DefaultMaxBackoff caps the doubling.
	DefaultMaxBackoff = 30 * time.Second
)

// Config is the model pool's configuration: the named models, the limits of
// the endpoints that serve them, and the retry policy. It is decoded from
// YAML (the models section keeps its order) and validated with Validate;
// NewPool fills in the defaults, so zero fields mean "default" and the zero
// Config is valid but empty. API keys are never part of it: a model names
// the environment variable that holds its key.
type Config struct {
	// Models are the named models, in the order the file lists them.
	Models Models `yaml:"models" json:"models"`
	// Endpoints holds per-endpoint limits, keyed by the endpoint URL as the
	// models spell it (a trailing slash does not matter). Every model served
	// by one endpoint shares its limits; an endpoint not listed gets the
	// defaults of its backend.
	Endpoints map[string]EndpointConfig `yaml:"endpoints,omitempty" json:"endpoints,omitempty"`
	// Retry is the retry policy for transient failures.
	Retry RetryConfig `yaml:"retry,omitempty" json:"retry,omitempty"`
}

// ModelConfig describes one model.
type ModelConfig struct {
	// Backend is "ollama" or "openai" (any OpenAI-compatible server).
	Backend Backend `yaml:"backend" json:"backend"`
	// Model is the backend's name for the model, e.g. "llama3.1:8b".
	Model string `yaml:"model" json:"model"`
	// Endpoint is the server URL. Ollama: default $OLLAMA_HOST, else
	// http://localhost:11434. OpenAI-compatible: the base URL including
	// /v1, default https://api.openai.com/v1.
	Endpoint string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
	// Roles are the stages that may use the model.
	Roles []Role `yaml:"roles,omitempty" json:"roles,omitempty"`
	// Weight spreads one role over several models: a model gets a share of
	// the role's requests proportional to its weight. 0 means 1.
	Weight float64 `yaml:"weight,omitempty" json:"weight,omitempty"`
	// Style is the prompt rendering the pipeline sends: "completion" or
	// "chat". Default: completion for ollama, chat for openai.
	Style Style `yaml:"style,omitempty" json:"style,omitempty"`
	// APIKeyEnv names the environment variable holding the API key
	// (openai only; default OPENAI_API_KEY). A server on a loopback or
	// private address may run without a key.
	APIKeyEnv string `yaml:"api_key_env,omitempty" json:"api_key_env,omitempty"`
	// Headers are extra HTTP headers sent with every request. A value may
	// name environment variables as ${NAME} (or $NAME); they are expanded
	// when the pool is built, so tokens stay out of the file.
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Options are extra Ollama model options (num_ctx, num_thread,
	// repeat_penalty, ...) merged into every request (ollama only). The
	// request's own sampling settings take precedence.
	Options map[string]any `yaml:"options,omitempty" json:"options,omitempty"`
	// KeepAlive is how long Ollama keeps the model loaded after a request
	// (ollama only; negative = forever, unset = the server's default).
	KeepAlive *time.Duration `yaml:"keep_alive,omitempty" json:"keep_alive,omitempty"`
	// MaxContext caps the context window (num_ctx) sent with each request
	// (ollama only; default 32768). Unless options set num_ctx, every
	// request asks for a window that holds its whole prompt and reply (see
	// Ollama), so that the server never cuts the start of a prompt.
	MaxContext int `yaml:"max_context,omitempty" json:"max_context,omitempty"`
	// Price is the cost per million tokens, for accounting.
	Price Price `yaml:"price,omitempty" json:"price,omitempty"`
	// Batch sends the model's calls through the server's Batch API
	// (openai only) instead of one request each: cheaper (see
	// Price.Batch), but a batch job may take up to 24 hours. It needs an
	// executor that runs batch jobs (llm/batch); the command line
	// installs one.
	Batch bool `yaml:"batch,omitempty" json:"batch,omitempty"`
}

// Hosted reports whether the model is served through the OpenAI-compatible
// API by a server that is not on this machine or a private network: the
// models the command line's --batch sends through the Batch API.
func (mc ModelConfig) Hosted() bool {
	if mc.Backend != BackendOpenAI {
		return false
	}
	u := mc.Endpoint
	if u == "" {
		u = DefaultOpenAIURL
	}
	return !isLocalHost(u)
}

// Price is what a model costs, in US dollars per million tokens.
type Price struct {
	PromptPerMillion     float64 `yaml:"prompt_per_million,omitempty" json:"prompt_per_million,omitempty"`
	CompletionPerMillion float64 `yaml:"completion_per_million,omitempty" json:"completion_per_million,omitempty"`
	// BatchPromptPerMillion and BatchCompletionPerMillion are the prices
	// of calls made through the Batch API; nil means
	// DefaultBatchDiscount times the synchronous price.
	BatchPromptPerMillion     *float64 `yaml:"batch_prompt_per_million,omitempty" json:"batch_prompt_per_million,omitempty"`
	BatchCompletionPerMillion *float64 `yaml:"batch_completion_per_million,omitempty" json:"batch_completion_per_million,omitempty"`
}

// DefaultBatchDiscount is the share of the synchronous price a Batch API
// call costs when the configuration gives no batch price (OpenAI's is
// half).
const DefaultBatchDiscount = 0.5

// Batch returns the price of a call made through the Batch API, as a
// plain synchronous price (its batch fields nil).
func (p Price) Batch() Price {
	b := Price{
		PromptPerMillion:     p.PromptPerMillion * DefaultBatchDiscount,
		CompletionPerMillion: p.CompletionPerMillion * DefaultBatchDiscount,
	}
	if p.BatchPromptPerMillion != nil {
		b.PromptPerMillion = *p.BatchPromptPerMillion
	}
	if p.BatchCompletionPerMillion != nil {
		b.CompletionPerMillion = *p.BatchCompletionPerMillion
	}
	return b
}

// EndpointConfig holds the limits shared by every model on one endpoint.
// Zero fields take the defaults of the endpoint's backend.
type EndpointConfig struct {
	// MaxConcurrent bounds the requests in flight at once (default 2 for
	// ollama, 8 for openai). With AutoConcurrency it is the ceiling of the
	// adaptive limit (default 16 for ollama, 64 for openai).
	//
	// MaxConcurrent and AutoConcurrency are one key in YAML and JSON,
	// max_concurrent: a number (a fixed limit), auto (adaptive, default
	// ceiling) or {auto: true, max: N} (adaptive, ceiling N).
	MaxConcurrent int `yaml:"-" json:"-"`
	// AutoConcurrency makes the concurrency limit adapt to the server: it
	// starts at 1, grows while latency stays flat and backs off on 429,
	// 5xx, timeouts and rising latency, never above MaxConcurrent (see
	// adaptive.go). It changes throughput only, never what a call returns.
	AutoConcurrency bool `yaml:"-" json:"-"`
	// RequestsPerMinute bounds the request rate, spacing requests evenly
	// (0 = unlimited).
	RequestsPerMinute float64 `yaml:"requests_per_minute,omitempty" json:"requests_per_minute,omitempty"`
	// TokensPerMinute bounds prompt+completion tokens per minute, counting
	// each request's prompt (estimated at 4 bytes a token) plus its
	// MaxTokens before the call, as hosted APIs do, and charging any excess
	// the reply reports afterwards (0 = unlimited).
	TokensPerMinute int `yaml:"tokens_per_minute,omitempty" json:"tokens_per_minute,omitempty"`
	// Timeout bounds one call (default 10m for ollama, 2m for openai).
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// RetryConfig is the retry policy. Transient failures (429, 5xx, timeouts,
// unreachable servers, truncated or invalid replies) are retried after an
// exponential backoff with jitter: before retry n the pool waits a random
// duration in [b/2, b], b = min(InitialBackoff·2^(n-1), MaxBackoff), or the
// server's Retry-After if that is longer. Zero fields take the defaults.
type RetryConfig struct {
	// MaxAttempts is the number of tries per call, the first included
	// (default 6; 1 disables retries).
	MaxAttempts int `yaml:"max_attempts,omitempty" json:"max_attempts,omitempty"`
	// InitialBackoff is the base wait before the first retry (default 500ms).
	InitialBackoff time.Duration `yaml:"initial_backoff,omitempty" json:"initial_backoff,omitempty"`
	// MaxBackoff caps the base wait (default 30s).
	MaxBackoff time.Duration `yaml:"max_backoff,omitempty" json:"max_backoff,omitempty"`
}

// WithDefaults returns r with its zero fields set to the defaults, as
// NewPool applies them.
func (r RetryConfig) WithDefaults() RetryConfig { return r.withDefaults() }

func (r RetryConfig) withDefaults() RetryConfig {
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.InitialBackoff == 0 {
		r.InitialBackoff = DefaultInitialBackoff
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = max(DefaultMaxBackoff, r.InitialBackoff)
	}
	return r
}

// String returns the configuration as YAML with secrets redacted: header
// values and any credentials in URLs are replaced. API keys are never in a
// Config at all.
func (c Config) String() string {
	r := Config{Retry: c.Retry}
	for _, m := range c.Models {
		r.Models = append(r.Models, NamedModel{Name: m.Name, ModelConfig: m.ModelConfig.redacted()})
	}
	if c.Endpoints != nil {
		r.Endpoints = make(map[string]EndpointConfig, len(c.Endpoints))
		for k, v := range c.Endpoints {
			r.Endpoints[redactURL(k)] = v
		}
	}
	b, err := yaml.Marshal(r)
	if err != nil {
		return fmt.Sprintf("<llm.Config: %v>", err)
	}
	return string(b)
}

// String returns the model configuration on one line with header values
// and URL credentials redacted.
func (mc ModelConfig) String() string {
	b, err := json.Marshal(mc.redacted())
	if err != nil {
		return fmt.Sprintf("<llm.ModelConfig: %v>", err)
	}
	return string(b)
}

func (mc ModelConfig) redacted() ModelConfig {
	if mc.Endpoint != "" {
		mc.Endpoint = redactURL(mc.Endpoint)
	}
	if mc.Headers != nil {
		h := make(map[string]string, len(mc.Headers))
		for k := range mc.Headers {
			h[k] = "[redacted]"
		}
		mc.Headers = h
	}
	return mc
}
