package llm

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// FieldError is one problem with one field of a configuration. Path names
// the field from the top of the configuration file, one element per key
// ("models", "falcon", "endpoint"), so that a caller holding the parsed
// file can point at the line. Validation errors join any number of them.
type FieldError struct {
	Path []string
	Msg  string
}

// Error returns "path.to.field: message".
func (e *FieldError) Error() string { return strings.Join(e.Path, ".") + ": " + e.Msg }

// Field returns the dotted path of the field.
func (e *FieldError) Field() string { return strings.Join(e.Path, ".") }

// FieldErrorf returns a *FieldError for the field at path.
func FieldErrorf(path []string, format string, args ...any) *FieldError {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the configuration without reading the environment. The
// error joins every problem, each a *FieldError naming its field, as in
// `models.falcon.backend: unknown backend "x" (want ollama or openai)`.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path []string, format string, args ...any) {
		errs = append(errs, FieldErrorf(path, format, args...))
	}
	seen := map[string]bool{}
	for _, m := range c.Models {
		if m.Name == "" {
			bad([]string{"models", `""`}, "empty model name")
		}
		if seen[m.Name] {
			bad([]string{"models", m.Name}, "defined twice")
		}
		seen[m.Name] = true
		errs = append(errs, m.ModelConfig.validate([]string{"models", m.Name})...)
	}
	keys := make([]string, 0, len(c.Endpoints))
	for k := range c.Endpoints {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	norm := map[string]string{}
	for _, k := range keys {
		e := c.Endpoints[k]
		f := func(field ...string) []string { return append([]string{"endpoints", k}, field...) }
		n, err := normalizeURL(k)
		if err != nil {
			bad(f(), "%v", err)
		} else if prev, dup := norm[n]; dup {
			bad(f(), "same endpoint as %s", prev)
		} else {
			norm[n] = k
		}
		if e.MaxConcurrent < 0 {
			bad(f("max_concurrent"), "must not be negative")
		}
		if e.RequestsPerMinute < 0 {
			bad(f("requests_per_minute"), "must not be negative")
		}
		if e.TokensPerMinute < 0 {
			bad(f("tokens_per_minute"), "must not be negative")
		}
		if e.Timeout < 0 {
			bad(f("timeout"), "must not be negative")
		}
	}
	r := c.Retry
	retry := func(field string) []string { return []string{"retry", field} }
	if r.MaxAttempts < 0 {
		bad(retry("max_attempts"), "must not be negative")
	}
	if r.InitialBackoff < 0 {
		bad(retry("initial_backoff"), "must not be negative")
	}
	if r.MaxBackoff < 0 {
		bad(retry("max_backoff"), "must not be negative")
	}
	if r.InitialBackoff > 0 && r.MaxBackoff > 0 && r.MaxBackoff < r.InitialBackoff {
		bad(retry("max_backoff"), "%v is less than initial_backoff %v", r.MaxBackoff, r.InitialBackoff)
	}
	return errors.Join(errs...)
}

// validate returns the problems of one model, each a *FieldError under
// path.
func (mc ModelConfig) validate(path []string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldErrorf(append(slices.Clip(path), field), format, args...))
	}
	spec, known := lookupBackend(mc.Backend)
	switch {
	case mc.Backend == "":
		bad("backend", "missing (want %s)", backendChoices())
	case !known:
		bad("backend", "unknown backend %q (want %s)", mc.Backend, backendChoices())
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
			bad("roles", "unknown role %q (want %s)", r, roleChoices())
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
	if known {
		if mc.APIKeyEnv != "" {
			if spec.keyEnv == "" {
				bad("api_key_env", "only the %s backend takes an API key", backendsWith(func(b *backendSpec) bool { return b.keyEnv != "" }))
			} else if !envNameRE.MatchString(mc.APIKeyEnv) {
				bad("api_key_env", "%q is not an environment variable name (the key itself never goes in the config)", mc.APIKeyEnv)
			}
		}
		ollamaOnly := backendsWith(func(b *backendSpec) bool { return b.ollamaOptions })
		if len(mc.Options) > 0 && !spec.ollamaOptions {
			bad("options", "only the %s backend takes options", ollamaOnly)
		}
		if mc.KeepAlive != nil && !spec.ollamaOptions {
			bad("keep_alive", "only the %s backend takes keep_alive", ollamaOnly)
		}
		if mc.MaxContext != 0 && !spec.ollamaOptions {
			bad("max_context", "only the %s backend takes max_context", ollamaOnly)
		}
	}
	for k := range mc.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			bad("headers", "invalid header name %q", k)
		}
	}
	if mc.MaxContext < 0 {
		bad("max_context", "must not be negative")
	}
	if mc.Price.PromptPerMillion < 0 || mc.Price.CompletionPerMillion < 0 {
		bad("price", "must not be negative")
	}
	for _, bp := range []*float64{mc.Price.BatchPromptPerMillion, mc.Price.BatchCompletionPerMillion} {
		if bp != nil && !(*bp >= 0) {
			bad("price", "batch prices must not be negative")
			break
		}
	}
	if mc.Batch && known && !spec.batchAPI {
		bad("batch", "only the %s backend has a Batch API", backendsWith(func(b *backendSpec) bool { return b.batchAPI }))
	}
	return errs
}

// backendsWith names the backends for which ok holds ("ollama").
func backendsWith(ok func(*backendSpec) bool) string {
	var names []string
	for i := range backendTable {
		if ok(&backendTable[i]) {
			names = append(names, string(backendTable[i].name))
		}
	}
	return strings.Join(names, " and ")
}

// withDefaults fills the fields NewPool needs from the backend's row,
// reading its environment (OLLAMA_HOST) through getenv. The endpoint comes
// back normalized.
func (mc ModelConfig) withDefaults(getenv func(string) string) (ModelConfig, error) {
	spec, ok := lookupBackend(mc.Backend)
	if !ok {
		return mc, FieldErrorf([]string{"backend"}, "unknown backend %q", mc.Backend)
	}
	if mc.Endpoint == "" {
		u, err := spec.defaultEndpoint(getenv)
		if err != nil {
			return mc, FieldErrorf([]string{"endpoint"}, "%v", err)
		}
		mc.Endpoint = u
	}
	if mc.Style == "" {
		mc.Style = spec.style
	}
	if mc.APIKeyEnv == "" {
		mc.APIKeyEnv = spec.keyEnv
	}
	if mc.Weight == 0 {
		mc.Weight = 1
	}
	u, err := normalizeURL(mc.Endpoint)
	if err != nil {
		return mc, FieldErrorf([]string{"endpoint"}, "%v", err)
	}
	mc.Endpoint = u
	return mc, nil
}

func (e EndpointConfig) withDefaults(b Backend) EndpointConfig {
	spec, _ := lookupBackend(b)
	if e.MaxConcurrent == 0 {
		e.MaxConcurrent = spec.concurrency
		if e.AutoConcurrency {
			e.MaxConcurrent = spec.autoCeiling
		}
	}
	if e.Timeout == 0 {
		e.Timeout = spec.timeout
	}
	return e
}
