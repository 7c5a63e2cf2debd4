package llm

import (
	"maps"
	"slices"
	"strings"
)

// ModelInfo describes a model of the pool, with the defaults applied.
type ModelInfo struct {
	Name     string  `json:"name"`
	Backend  Backend `json:"backend"`
	Model    string  `json:"model"`
	Endpoint string  `json:"endpoint"` // without credentials
	Roles    []Role  `json:"roles,omitempty"`
	Weight   float64 `json:"weight"`
	Style    Style   `json:"style"`
	// Options are the configured Ollama options that change what the
	// model writes (runtime options such as num_thread are left out).
	Options map[string]any `json:"options,omitempty"`
	// Price is the model's configured price.
	Price Price `json:"price"`
	// Batch says the model's calls go through the Batch API.
	Batch bool `json:"batch,omitempty"`
}

// CallPrice is the price each of the model's calls is charged at: the
// batch price for a model whose calls go through the Batch API, the
// configured price otherwise.
func (m ModelInfo) CallPrice() Price {
	if m.Batch {
		return m.Price.Batch()
	}
	return m.Price
}

func (m ModelInfo) clone() ModelInfo {
	m.Roles = slices.Clone(m.Roles)
	m.Options = maps.Clone(m.Options)
	return m
}

// HasRole reports whether the model may be used for r.
func (m ModelInfo) HasRole(r Role) bool { return slices.Contains(m.Roles, r) }

// SameModel reports whether m and o are one model of the pool (the same
// name) or the same model served twice under two names (SameServed).
func (m ModelInfo) SameModel(o ModelInfo) bool {
	return m.Name == o.Name || m.SameServed(o)
}

// SameServed reports whether m and o, whatever their names, are the same
// model on the same server: the same backend, model and endpoint, where for
// Ollama a model without a tag is its ":latest".
func (m ModelInfo) SameServed(o ModelInfo) bool {
	if m.Backend != o.Backend || m.Endpoint != o.Endpoint {
		return false
	}
	if m.Backend == BackendOllama {
		return ollamaTagged(m.Model) == ollamaTagged(o.Model)
	}
	return m.Model == o.Model
}

// ollamaTagged returns an Ollama model name with its tag, ":latest" when
// it has none ("llama3" and "llama3:latest" are one model).
func ollamaTagged(model string) string {
	if i := strings.LastIndexByte(model, ':'); i > strings.LastIndexByte(model, '/') {
		return model
	}
	return model + ":latest"
}
