package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
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
	// Price is the cost per million tokens, for accounting.
	Price Price `yaml:"price,omitempty" json:"price,omitempty"`
}

// Price is what a model costs, in US dollars per million tokens.
type Price struct {
	PromptPerMillion     float64 `yaml:"prompt_per_million,omitempty" json:"prompt_per_million,omitempty"`
	CompletionPerMillion float64 `yaml:"completion_per_million,omitempty" json:"completion_per_million,omitempty"`
}

// EndpointConfig holds the limits shared by every model on one endpoint.
// Zero fields take the defaults of the endpoint's backend.
type EndpointConfig struct {
	// MaxConcurrent bounds the requests in flight at once (default 2 for
	// ollama, 8 for openai).
	MaxConcurrent int `yaml:"max_concurrent,omitempty" json:"max_concurrent,omitempty"`
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

// NamedModel is one entry of Models.
type NamedModel struct {
	// Name is the model's name in the pool (the key in the models map).
	Name string
	ModelConfig
}

// Models is the ordered models section: in YAML and JSON a mapping from
// name to ModelConfig whose order is kept. The zero value is empty and
// ready to use.
type Models []NamedModel

// Get returns the model called name.
func (ms Models) Get(name string) (ModelConfig, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m.ModelConfig, true
		}
	}
	return ModelConfig{}, false
}

// Set replaces the model called name, or appends it.
func (ms *Models) Set(name string, mc ModelConfig) {
	for i := range *ms {
		if (*ms)[i].Name == name {
			(*ms)[i].ModelConfig = mc
			return
		}
	}
	*ms = append(*ms, NamedModel{Name: name, ModelConfig: mc})
}

// Names returns the model names in order.
func (ms Models) Names() []string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return names
}

// UnmarshalYAML decodes the models mapping in file order. It uses the
// callback form of yaml.v3's unmarshaler on purpose: the callback decodes
// with the caller's decoder, so KnownFields(true) still rejects unknown
// fields inside each model and errors keep their line numbers. The order
// comes from a second pass that records where each model starts.
func (ms *Models) UnmarshalYAML(unmarshal func(any) error) error {
	var self yamlPos
	if err := unmarshal(&self); err != nil {
		return err
	}
	switch self.kind {
	case 0: // null: no models
		*ms = nil
		return nil
	case yaml.MappingNode:
	default:
		return fmt.Errorf("line %d: models must be a mapping from name to model", self.line)
	}
	var byName map[string]ModelConfig
	if err := unmarshal(&byName); err != nil {
		return err
	}
	var pos map[string]yamlPos
	if err := unmarshal(&pos); err != nil {
		return err
	}
	out := make(Models, 0, len(byName))
	for name, mc := range byName {
		out = append(out, NamedModel{Name: name, ModelConfig: mc})
	}
	slices.SortFunc(out, func(a, b NamedModel) int {
		pa, pb := pos[a.Name], pos[b.Name]
		if pa.line != pb.line {
			return pa.line - pb.line
		}
		if pa.col != pb.col {
			return pa.col - pb.col
		}
		return strings.Compare(a.Name, b.Name)
	})
	*ms = out
	return nil
}

// yamlPos records where a YAML value starts and its kind. (A null value
// is not decoded at all and leaves it zero.)
type yamlPos struct {
	line, col int
	kind      yaml.Kind
}

// UnmarshalYAML records the node's position and accepts any content.
func (p *yamlPos) UnmarshalYAML(n *yaml.Node) error {
	p.line, p.col, p.kind = n.Line, n.Column, n.Kind
	return nil
}

// MarshalYAML encodes the models as an ordered mapping.
func (ms Models) MarshalYAML() (any, error) {
	node := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, m := range ms {
		var v yaml.Node
		if err := v.Encode(m.ModelConfig); err != nil {
			return nil, err
		}
		node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: m.Name}, &v)
	}
	return node, nil
}

// MarshalJSON encodes the models as an object whose keys keep their order.
func (ms Models) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.Name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(m.ModelConfig)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON decodes an object of models, keeping the order of its keys.
func (ms *Models) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		*ms = nil
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("models must be a JSON object")
	}
	var out Models
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		var mc ModelConfig
		if err := dec.Decode(&mc); err != nil {
			return fmt.Errorf("models.%s: %w", name, err)
		}
		if _, dup := out.Get(name); dup {
			return fmt.Errorf("models.%s: defined twice", name)
		}
		out = append(out, NamedModel{Name: name, ModelConfig: mc})
	}
	*ms = out
	return nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the configuration without reading the environment. The
// error joins every problem, each naming its field, as in
// `models.falcon.backend: unknown backend "x" (want ollama or openai)`.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	seen := map[string]bool{}
	for _, m := range c.Models {
		f := "models." + m.Name
		if m.Name == "" {
			f = "models.\"\""
			bad(f, "empty model name")
		}
		if seen[m.Name] {
			bad(f, "defined twice")
		}
		seen[m.Name] = true
		for _, e := range m.ModelConfig.validate() {
			errs = append(errs, fmt.Errorf("%s.%w", f, e))
		}
	}
	keys := make([]string, 0, len(c.Endpoints))
	for k := range c.Endpoints {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	norm := map[string]string{}
	for _, k := range keys {
		e := c.Endpoints[k]
		f := "endpoints." + k
		n, err := normalizeURL(k)
		if err != nil {
			bad(f, "%v", err)
		} else if prev, dup := norm[n]; dup {
			bad(f, "same endpoint as %s", prev)
		} else {
			norm[n] = k
		}
		if e.MaxConcurrent < 0 {
			bad(f+".max_concurrent", "must not be negative")
		}
		if e.RequestsPerMinute < 0 {
			bad(f+".requests_per_minute", "must not be negative")
		}
		if e.TokensPerMinute < 0 {
			bad(f+".tokens_per_minute", "must not be negative")
		}
		if e.Timeout < 0 {
			bad(f+".timeout", "must not be negative")
		}
	}
	r := c.Retry
	if r.MaxAttempts < 0 {
		bad("retry.max_attempts", "must not be negative")
	}
	if r.InitialBackoff < 0 {
		bad("retry.initial_backoff", "must not be negative")
	}
	if r.MaxBackoff < 0 {
		bad("retry.max_backoff", "must not be negative")
	}
	if r.InitialBackoff > 0 && r.MaxBackoff > 0 && r.MaxBackoff < r.InitialBackoff {
		bad("retry.max_backoff", "%v is less than initial_backoff %v", r.MaxBackoff, r.InitialBackoff)
	}
	return errors.Join(errs...)
}

// fieldError is a problem with one field of a ModelConfig; Config.Validate
// prefixes it with the model's path.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// validate returns the problems of one model, each naming its field.
func (mc ModelConfig) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &fieldError{field, fmt.Sprintf(format, args...)})
	}
	switch mc.Backend {
	case BackendOllama, BackendOpenAI:
	case "":
		bad("backend", "missing (want ollama or openai)")
	default:
		bad("backend", "unknown backend %q (want ollama or openai)", mc.Backend)
	}
	if strings.TrimSpace(mc.Model) == "" {
		bad("model", "missing (the backend's model name, e.g. llama3.1:8b)")
	}
	if mc.Endpoint != "" {
		if _, err := normalizeURL(mc.Endpoint); err != nil {
			bad("endpoint", "%v", err)
		}
	}
	seen := map[Role]bool{}
	for _, r := range mc.Roles {
		if !r.valid() {
			bad("roles", "unknown role %q (want instructions, instances or ensemble)", r)
		} else if seen[r] {
			bad("roles", "role %q listed twice", r)
		}
		seen[r] = true
	}
	if mc.Weight < 0 {
		bad("weight", "must not be negative")
	}
	switch mc.Style {
	case "", StyleCompletion, StyleChat:
	default:
		bad("style", "unknown style %q (want completion or chat)", mc.Style)
	}
	if mc.APIKeyEnv != "" {
		if mc.Backend == BackendOllama {
			bad("api_key_env", "only the openai backend takes an API key")
		} else if !envNameRE.MatchString(mc.APIKeyEnv) {
			bad("api_key_env", "%q is not an environment variable name (the key itself never goes in the config)", mc.APIKeyEnv)
		}
	}
	for k := range mc.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			bad("headers", "invalid header name %q", k)
		}
	}
	if len(mc.Options) > 0 && mc.Backend == BackendOpenAI {
		bad("options", "only the ollama backend takes options")
	}
	if mc.KeepAlive != nil && mc.Backend == BackendOpenAI {
		bad("keep_alive", "only the ollama backend takes keep_alive")
	}
	if mc.Price.PromptPerMillion < 0 || mc.Price.CompletionPerMillion < 0 {
		bad("price", "must not be negative")
	}
	return errs
}

// withDefaults fills the fields NewPool needs, reading OLLAMA_HOST through
// getenv. The endpoint comes back normalized.
func (mc ModelConfig) withDefaults(getenv func(string) string) (ModelConfig, error) {
	switch mc.Backend {
	case BackendOllama:
		if mc.Endpoint == "" {
			mc.Endpoint = DefaultOllamaURL
			if h := getenv("OLLAMA_HOST"); h != "" {
				u, err := ollamaHostURL(h)
				if err != nil {
					return mc, fmt.Errorf("endpoint: OLLAMA_HOST: %w", err)
				}
				mc.Endpoint = u
			}
		}
		if mc.Style == "" {
			mc.Style = StyleCompletion
		}
	case BackendOpenAI:
		if mc.Endpoint == "" {
			mc.Endpoint = DefaultOpenAIURL
		}
		if mc.Style == "" {
			mc.Style = StyleChat
		}
		if mc.APIKeyEnv == "" {
			mc.APIKeyEnv = DefaultAPIKeyEnv
		}
	}
	if mc.Weight == 0 {
		mc.Weight = 1
	}
	u, err := normalizeURL(mc.Endpoint)
	if err != nil {
		return mc, fmt.Errorf("endpoint: %w", err)
	}
	mc.Endpoint = u
	return mc, nil
}

func (e EndpointConfig) withDefaults(b Backend) EndpointConfig {
	if e.MaxConcurrent == 0 {
		e.MaxConcurrent = DefaultOpenAIConcurrency
		if b == BackendOllama {
			e.MaxConcurrent = DefaultOllamaConcurrency
		}
	}
	if e.Timeout == 0 {
		e.Timeout = DefaultOpenAITimeout
		if b == BackendOllama {
			e.Timeout = DefaultOllamaTimeout
		}
	}
	return e
}

// normalizeURL checks that raw is an http(s) URL with a host and returns it
// with the scheme and host lower-cased and no trailing slash.
func normalizeURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", raw)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: a query or fragment is not supported", raw)
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// redactURL returns the URL without its user name and password, for
// messages, logs, statistics and cache keys.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// ollamaHostURL turns an OLLAMA_HOST value (host, host:port or a URL) into a
// URL the way the ollama command does: no scheme means http and port 11434.
func ollamaHostURL(v string) (string, error) {
	v = strings.TrimSpace(v)
	scheme, hostport, ok := strings.Cut(v, "://")
	defaultPort := "11434"
	switch {
	case !ok:
		scheme, hostport = "http", v
	case scheme == "http":
		defaultPort = "80"
	case scheme == "https":
		defaultPort = "443"
	}
	hostport, path, _ := strings.Cut(hostport, "/")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.Trim(hostport, "[]"), defaultPort
	}
	if host == "" {
		host = "127.0.0.1"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: path}
	return normalizeURL(u.String())
}

// isLocalHost reports whether the URL's host is on this machine or a private
// network: loopback and private addresses, single-label names and names
// under .local, .lan, .internal or .home.arpa. Such servers may run without
// an API key.
func isLocalHost(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	if ip := net.ParseIP(h); ip != nil {
		return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
	}
	if !strings.Contains(h, ".") {
		return true
	}
	for _, s := range []string{".local", ".lan", ".internal", ".home.arpa"} {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
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

// ParseSpec parses a model given on the command line:
//
//	ollama:NAME[@URL]        e.g. ollama:llama3.1:8b@http://gpu1:11434
//	openai:NAME[@BASE_URL]   e.g. openai:gpt-4o-mini
//
// NAME may contain colons. The text after the last '@' is the endpoint only
// if it is an http(s) URL or a host:port (which means http://host:port);
// otherwise the '@' belongs to NAME. The returned name is NAME.
func ParseSpec(spec string) (string, ModelConfig, error) {
	backend, rest, ok := strings.Cut(spec, ":")
	if !ok {
		return "", ModelConfig{}, fmt.Errorf("model spec %q: want ollama:NAME[@URL] or openai:NAME[@BASE_URL]", spec)
	}
	mc := ModelConfig{Backend: Backend(backend)}
	switch mc.Backend {
	case BackendOllama, BackendOpenAI:
	default:
		return "", ModelConfig{}, fmt.Errorf("model spec %q: unknown backend %q (want ollama or openai)", spec, backend)
	}
	name := rest
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		if u, ok := specURL(rest[i+1:]); ok {
			name, mc.Endpoint = rest[:i], u
		}
	}
	if name == "" {
		return "", ModelConfig{}, fmt.Errorf("model spec %q: missing model name", spec)
	}
	mc.Model = name
	return name, mc, nil
}

var hostPortRE = regexp.MustCompile(`^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$`)

// specURL reports whether s names an endpoint in a model spec.
func specURL(s string) (string, bool) {
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		u, err := normalizeURL(s)
		return u, err == nil
	}
	if hostPortRE.MatchString(s) {
		u, err := normalizeURL("http://" + s)
		return u, err == nil
	}
	return "", false
}
