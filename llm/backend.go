package llm

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// backendSpec is everything the package knows about one backend: the
// defaults a model of that backend gets, which configuration fields it
// takes, how its client is built, and what to tell a user whose server is
// down or lacks a model. The table below has one row per backend; adding a
// backend is one new file (its Model) plus one row, and validation,
// defaults, model specs, the pool and the reachability preflight all
// follow from the row.
type backendSpec struct {
	name Backend
	// specForm is how a command-line model spec of the backend looks.
	specForm string
	// defaultEndpoint returns the endpoint of a model that sets none.
	defaultEndpoint func(getenv func(string) string) (string, error)
	// style is the prompt style of a model that sets none.
	style Style
	// concurrency and timeout are the endpoint defaults; autoCeiling is
	// the ceiling of max_concurrent: auto.
	concurrency int
	autoCeiling int
	timeout     time.Duration
	// keyEnv is the API key variable of a model that sets no api_key_env;
	// "" means the backend takes no key.
	keyEnv string
	// ollamaOptions reports whether the backend takes options and
	// keep_alive.
	ollamaOptions bool
	// batchAPI reports whether the backend's servers may offer the
	// OpenAI-style Batch API (a model may set batch).
	batchAPI bool
	// build returns the client; key is the API key read from keyEnv ("" if
	// the backend takes none).
	build func(mc ModelConfig, client *http.Client, key string) (Model, error)
	// probe, when set, asks the server whether it has the model, for the
	// preflight: it returns an error matching ErrModelNotFound when the
	// server says no, and nil when it says yes or cannot tell.
	probe func(ctx context.Context, client *http.Client, endpoint string, header http.Header, model string) error
	// startHint says how to start an unreachable server ("" for none).
	startHint string
	// missingModelHint says how to get a model the server lacks.
	missingModelHint func(endpoint, model string) string
}

// backendTable lists the backends. It is never modified.
var backendTable = [...]backendSpec{
	{
		name:     BackendOllama,
		specForm: "ollama:NAME[@URL]",
		defaultEndpoint: func(getenv func(string) string) (string, error) {
			if h := getenv("OLLAMA_HOST"); h != "" {
				u, err := ollamaHostURL(h)
				if err != nil {
					return "", fmt.Errorf("OLLAMA_HOST: %w", err)
				}
				return u, nil
			}
			return DefaultOllamaURL, nil
		},
		style:         StyleCompletion,
		concurrency:   DefaultOllamaConcurrency,
		autoCeiling:   DefaultOllamaAutoCeiling,
		timeout:       DefaultOllamaTimeout,
		ollamaOptions: true,
		build: func(mc ModelConfig, client *http.Client, _ string) (Model, error) {
			return NewOllama(mc, client)
		},
		probe:     probeOllama,
		startHint: "start it with `ollama serve`",
		missingModelHint: func(endpoint, model string) string {
			return fmt.Sprintf("pull it with `OLLAMA_HOST=%s ollama pull %s`", endpoint, model)
		},
	},
	{
		name:     BackendOpenAI,
		specForm: "openai:NAME[@BASE_URL]",
		defaultEndpoint: func(func(string) string) (string, error) {
			return DefaultOpenAIURL, nil
		},
		style:       StyleChat,
		concurrency: DefaultOpenAIConcurrency,
		autoCeiling: DefaultOpenAIAutoCeiling,
		timeout:     DefaultOpenAITimeout,
		keyEnv:      DefaultAPIKeyEnv,
		batchAPI:    true,
		build: func(mc ModelConfig, client *http.Client, key string) (Model, error) {
			return NewOpenAI(mc, client, key)
		},
		missingModelHint: func(string, string) string {
			return "check the model name: the server does not serve it, or the key may not use it"
		},
	},
}

// lookupBackend returns the table row of b.
func lookupBackend(b Backend) (*backendSpec, bool) {
	for i := range backendTable {
		if backendTable[i].name == b {
			return &backendTable[i], true
		}
	}
	return nil, false
}

// backendChoices is "ollama or openai", for messages.
func backendChoices() string {
	names := make([]string, len(backendTable))
	for i, b := range backendTable {
		names[i] = string(b.name)
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// DefaultEndpoint returns the endpoint a model of backend b gets when it
// sets none, reading its environment (OLLAMA_HOST) through getenv.
func DefaultEndpoint(b Backend, getenv func(string) string) (string, error) {
	spec, ok := lookupBackend(b)
	if !ok {
		return "", fmt.Errorf("unknown backend %q (want %s)", b, backendChoices())
	}
	return spec.defaultEndpoint(getenv)
}
