package llm

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const sampleYAML = `
models:
  falcon:
    backend: ollama
    model: "falcon:40b"
    endpoint: http://gpu1:11434
    roles: [instructions, instances]
    weight: 1
    style: completion
    options: {num_thread: 1}
    keep_alive: 5m
  zeta:
    backend: openai
    model: gpt-4o-mini
    roles: [ensemble]
    api_key_env: MY_OPENAI_KEY
    headers: {X-Org: abc}
    price: {prompt_per_million: 0.5, completion_per_million: 1.5}
  alpha:
    backend: ollama
    model: llama3.1:8b
    endpoint: http://gpu1:11434
    roles: [ensemble]
endpoints:
  http://gpu1:11434: {max_concurrent: 2, requests_per_minute: 0, tokens_per_minute: 0, timeout: 2m}
retry: {max_attempts: 6, initial_backoff: 500ms, max_backoff: 30s}
`

func decodeStrict(t *testing.T, src string) (Config, error) {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	return c, err
}

func TestConfigYAML(t *testing.T) {
	c, err := decodeStrict(t, sampleYAML)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := c.Models.Names(); !slices.Equal(got, []string{"falcon", "zeta", "alpha"}) {
		t.Errorf("model order = %v, want file order", got)
	}
	f, _ := c.Models.Get("falcon")
	if f.Model != "falcon:40b" || *f.KeepAlive != 5*time.Minute || f.Options["num_thread"] != 1 {
		t.Errorf("falcon = %+v", f)
	}
	z, _ := c.Models.Get("zeta")
	if z.Price.CompletionPerMillion != 1.5 || z.APIKeyEnv != "MY_OPENAI_KEY" {
		t.Errorf("zeta = %+v", z)
	}
	if e := c.Endpoints["http://gpu1:11434"]; e.MaxConcurrent != 2 || e.Timeout != 2*time.Minute {
		t.Errorf("endpoint = %+v", e)
	}
	if c.Retry.InitialBackoff != 500*time.Millisecond {
		t.Errorf("retry = %+v", c.Retry)
	}

	// Round trips keep the order.
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := decodeStrict(t, string(out))
	if err != nil {
		t.Fatalf("decoding the marshalled config: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(c2.Models, c.Models) {
		t.Errorf("YAML round trip changed the models:\n%s", out)
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if i, j := strings.Index(string(js), `"zeta"`), strings.Index(string(js), `"alpha"`); i < 0 || j < i {
		t.Errorf("JSON lost the order: %s", js)
	}
	var c3 Config
	if err := json.Unmarshal(js, &c3); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c3.Models.Names(), c.Models.Names()) {
		t.Errorf("JSON round trip order = %v", c3.Models.Names())
	}
}

func TestConfigYAMLStrict(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown model field", "models:\n  m:\n    backend: ollama\n    modle: x\n", "line 4: field modle not found"},
		{"unknown top-level field", "modelz: {}\n", "line 1: field modelz not found"},
		{"unknown endpoint field", "endpoints:\n  http://h:1: {max_concurrency: 2}\n", "line 2: field max_concurrency not found"},
		{"duplicate model", "models:\n  m: {backend: ollama, model: a}\n  m: {backend: ollama, model: b}\n", `mapping key "m" already defined`},
		{"models not a mapping", "models: [a, b]\n", "models must be a mapping"},
		{"bad duration", "retry: {max_backoff: soon}\n", "line 1: cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeStrict(t, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if c, err := decodeStrict(t, "models:\n"); err != nil || len(c.Models) != 0 {
		t.Errorf("empty models: %v, %v", c.Models, err)
	}
}

func TestConfigValidate(t *testing.T) {
	m := func(mc ModelConfig) Config { return Config{Models: Models{{Name: "falcon", ModelConfig: mc}}} }
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"unknown backend", m(ModelConfig{Backend: "x", Model: "a"}), []string{`models.falcon.backend: unknown backend "x" (want ollama or openai)`}},
		{"missing backend and model", m(ModelConfig{}), []string{"models.falcon.backend: missing", "models.falcon.model: missing"}},
		{"bad endpoint", m(ModelConfig{Backend: BackendOllama, Model: "a", Endpoint: "gpu1:11434"}), []string{"models.falcon.endpoint: "}},
		{"bad port", m(ModelConfig{Backend: BackendOllama, Model: "a", Endpoint: "http://gpu1:99999"}), []string{"models.falcon.endpoint: ", "port 99999 is outside 1-65535"}},
		{"bad role", m(ModelConfig{Backend: BackendOllama, Model: "a", Roles: []Role{"critic", RoleEnsemble, RoleEnsemble}}), []string{`models.falcon.roles: unknown role "critic"`, `role "ensemble" listed twice`}},
		{"negative weight", m(ModelConfig{Backend: BackendOllama, Model: "a", Weight: -1}), []string{"models.falcon.weight: must not be negative"}},
		{"bad style", m(ModelConfig{Backend: BackendOllama, Model: "a", Style: "poem"}), []string{`models.falcon.style: unknown style "poem"`}},
		{"key in config", m(ModelConfig{Backend: BackendOpenAI, Model: "a", APIKeyEnv: "sk-abc123"}), []string{"models.falcon.api_key_env: ", "not an environment variable name"}},
		{"api key on ollama", m(ModelConfig{Backend: BackendOllama, Model: "a", APIKeyEnv: "K"}), []string{"models.falcon.api_key_env: only the openai backend"}},
		{"options on openai", m(ModelConfig{Backend: BackendOpenAI, Model: "a", Options: map[string]any{"x": 1}}), []string{"models.falcon.options: only the ollama backend"}},
		{"keep_alive on openai", m(ModelConfig{Backend: BackendOpenAI, Model: "a", KeepAlive: ptr(time.Minute)}), []string{"models.falcon.keep_alive: only the ollama backend"}},
		{"negative price", m(ModelConfig{Backend: BackendOpenAI, Model: "a", Price: Price{PromptPerMillion: -1}}), []string{"models.falcon.price: must not be negative"}},
		{"bad header", m(ModelConfig{Backend: BackendOpenAI, Model: "a", Headers: map[string]string{"X Y": "1"}}), []string{`models.falcon.headers: invalid header name "X Y"`}},
		{
			"endpoint limits",
			Config{Endpoints: map[string]EndpointConfig{"ftp://x": {}, "http://h:1": {MaxConcurrent: -1, RequestsPerMinute: -1, TokensPerMinute: -1, Timeout: -1}}},
			[]string{"endpoints.ftp://x: ", "endpoints.http://h:1.max_concurrent", "endpoints.http://h:1.requests_per_minute", "endpoints.http://h:1.tokens_per_minute", "endpoints.http://h:1.timeout"},
		},
		{"same endpoint twice", Config{Endpoints: map[string]EndpointConfig{"http://h:1": {}, "http://H:1/": {}}}, []string{"same endpoint as"}},
		{"retry", Config{Retry: RetryConfig{MaxAttempts: -1, InitialBackoff: time.Minute, MaxBackoff: time.Second}}, []string{"retry.max_attempts", "retry.max_backoff: 1s is less than initial_backoff 1m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec     string
		name     string
		backend  Backend
		endpoint string
		err      string
	}{
		{spec: "ollama:tiny", name: "tiny", backend: BackendOllama},
		{spec: "ollama:llama3.1:8b@http://h:11434", name: "llama3.1:8b", backend: BackendOllama, endpoint: "http://h:11434"},
		{spec: "ollama:llama3.1:8b@http://H:11434/", name: "llama3.1:8b", backend: BackendOllama, endpoint: "http://h:11434"},
		{spec: "ollama:tiny@127.0.0.1:11555", name: "tiny", backend: BackendOllama, endpoint: "http://127.0.0.1:11555"},
		{spec: "ollama:user/model@sha256:abc", name: "user/model@sha256:abc", backend: BackendOllama},
		{spec: "ollama:name@notaurl", name: "name@notaurl", backend: BackendOllama},
		{spec: "openai:gpt-4o-mini", name: "gpt-4o-mini", backend: BackendOpenAI},
		{spec: "openai:meta/llama@https://api.together.xyz/v1", name: "meta/llama", backend: BackendOpenAI, endpoint: "https://api.together.xyz/v1"},
		{spec: "openai:a@b@http://h:8000/v1", name: "a@b", backend: BackendOpenAI, endpoint: "http://h:8000/v1"},
		{spec: "tiny", err: "want ollama:NAME"},
		{spec: "vllm:x", err: `unknown backend "vllm"`},
		{spec: "ollama:", err: "missing model name"},
		{spec: "ollama:@http://h:1", err: "missing model name"},
		{spec: "ollama:a@htp://x", err: `endpoint: "htp://x" is not an http:// or https:// URL`},
		{spec: "openai:gpt@htps://api.example.com/v1", err: "is not an http:// or https:// URL"},
		{spec: "ollama:a@localhost:99999", err: "port 99999 is outside 1-65535"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			name, mc, err := ParseSpec(tt.spec)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name != tt.name || mc.Model != tt.name || mc.Backend != tt.backend || mc.Endpoint != tt.endpoint {
				t.Errorf("ParseSpec = %q, %+v; want %q, %s, %q", name, mc, tt.name, tt.backend, tt.endpoint)
			}
		})
	}
}

func TestOllamaHostURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:11555":     "http://127.0.0.1:11555",
		"gpu1":                "http://gpu1:11434",
		"0.0.0.0":             "http://0.0.0.0:11434",
		"http://gpu1":         "http://gpu1:80",
		"https://o.example":   "https://o.example:443",
		"http://h:1/prefix":   "http://h:1/prefix",
		"[::1]:11434":         "http://[::1]:11434",
		":11434":              "http://127.0.0.1:11434",
		"HTTP://GPU1:11434/ ": "http://gpu1:11434",
	} {
		got, err := ollamaHostURL(in)
		if err != nil || got != want {
			t.Errorf("ollamaHostURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestIsLocalHost(t *testing.T) {
	for u, want := range map[string]bool{
		"http://localhost:8000/v1":     true,
		"http://127.0.0.1:8000":        true,
		"http://[::1]:8000":            true,
		"http://10.1.2.3:8000":         true,
		"http://192.168.1.9":           true,
		"http://gpu1:8000/v1":          true,
		"http://vllm.internal/v1":      true,
		"https://api.openai.com/v1":    false,
		"https://api.together.xyz/v1":  false,
		"http://8.8.8.8/v1":            false,
		"https://example.local.com/v1": false,
	} {
		if got := isLocalHost(u); got != want {
			t.Errorf("isLocalHost(%q) = %v, want %v", u, got, want)
		}
	}
}

func TestConfigStringRedacts(t *testing.T) {
	c := Config{
		Models: Models{{Name: "m", ModelConfig: ModelConfig{
			Backend: BackendOpenAI, Model: "x", Endpoint: "https://bob:hunter2@api.example.com/v1",
			Headers: map[string]string{"Authorization": "Bearer tok-123"},
		}}},
		Endpoints: map[string]EndpointConfig{"https://bob:hunter2@api.example.com/v1": {MaxConcurrent: 1}},
	}
	for _, s := range []string{c.String(), c.Models[0].ModelConfig.String()} {
		for _, secret := range []string{"hunter2", "tok-123", "bob"} {
			if strings.Contains(s, secret) {
				t.Errorf("String() shows %q:\n%s", secret, s)
			}
		}
		if !strings.Contains(s, "Authorization") || !strings.Contains(s, "api.example.com") {
			t.Errorf("String() lost the non-secret parts:\n%s", s)
		}
	}
}

func TestModelsSet(t *testing.T) {
	var ms Models
	ms.Set("a", ModelConfig{Model: "1"})
	ms.Set("b", ModelConfig{Model: "2"})
	ms.Set("a", ModelConfig{Model: "3"})
	if got := ms.Names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("names = %v", got)
	}
	if a, _ := ms.Get("a"); a.Model != "3" {
		t.Errorf("a = %+v", a)
	}
}
