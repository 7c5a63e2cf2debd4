package llm

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// LocalModel is a model an Ollama server has, as its tags and show APIs
// describe it.
type LocalModel struct {
	Name     string `json:"name"`
	Digest   string `json:"digest"`
	Size     int64  `json:"size"`
	Family   string `json:"family"`
	Params   string `json:"parameter_size,omitempty"`
	Template string `json:"-"`
	// Capabilities are the server's (completion, embedding, tools, ...);
	// empty on servers that do not report them.
	Capabilities []string `json:"capabilities,omitempty"`
}

// Embedding reports whether the model only embeds text.
func (m LocalModel) Embedding() bool {
	if slices.Contains(m.Capabilities, "embedding") && !slices.Contains(m.Capabilities, "completion") {
		return true
	}
	return strings.Contains(strings.ToLower(m.Name), "embed") || strings.Contains(strings.ToLower(m.Family), "bert")
}

// Base reports whether the model is a base model: its template passes the
// prompt through untouched, so it continues text rather than answering a
// chat. Base models get the completion style, the others chat.
func (m LocalModel) Base() bool {
	t := strings.Join(strings.Fields(m.Template), "")
	return t == "" || t == "{{.Prompt}}"
}

// Style is the prompt style the model gets in an automatic pool.
func (m LocalModel) Style() Style {
	if m.Base() {
		return StyleCompletion
	}
	return StyleChat
}

// ListOllama asks the Ollama server at endpoint which models it has
// (/api/tags) and describes each (/api/show), sorted by name. A nil client
// means a default one.
func ListOllama(ctx context.Context, client *http.Client, endpoint string) ([]LocalModel, error) {
	if client == nil {
		client = newHTTPClient()
	}
	base, err := normalizeURL(endpoint)
	if err != nil {
		return nil, err
	}
	var tags struct {
		Models []struct {
			Name    string `json:"name"`
			Digest  string `json:"digest"`
			Size    int64  `json:"size"`
			Details struct {
				Family        string `json:"family"`
				ParameterSize string `json:"parameter_size"`
			} `json:"details"`
		} `json:"models"`
	}
	if err := ollamaJSON(ctx, client, http.MethodGet, base, "/api/tags", nil, &tags); err != nil {
		return nil, err
	}
	out := make([]LocalModel, 0, len(tags.Models))
	for _, t := range tags.Models {
		m := LocalModel{Name: t.Name, Digest: t.Digest, Size: t.Size, Family: t.Details.Family, Params: t.Details.ParameterSize}
		var show struct {
			Template     string   `json:"template"`
			Capabilities []string `json:"capabilities"`
		}
		if err := ollamaJSON(ctx, client, http.MethodPost, base, "/api/show", map[string]string{"model": t.Name}, &show); err != nil {
			return nil, fmt.Errorf("describing %s: %w", t.Name, err)
		}
		m.Template, m.Capabilities = show.Template, show.Capabilities
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b LocalModel) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// ollamaJSON sends one request to an Ollama server and decodes its JSON
// reply into v.
func ollamaJSON(ctx context.Context, client *http.Client, method, base, path string, body, v any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		return classifyTransport(ctx, BackendOllama, redactURL(base), "", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return &StatusError{Backend: BackendOllama, Endpoint: redactURL(base), StatusCode: resp.StatusCode, Body: truncateBody(string(raw), "")}
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return &callError{BackendOllama, redactURL(base), "", ErrBadResponse, err}
	}
	return nil
}

// ErrTooFewModels is returned by ChoosePool when fewer than two usable
// models are installed: a vote needs a writer and at least one other
// model.
var ErrTooFewModels = errors.New("too few models")

// ChoosePool builds a heterogeneous pool from the models an Ollama server
// has: the writer (instructions and instances) is the largest base model
// when there is one, else the largest model; the ensemble is up to three
// others, preferring families not yet in the pool, larger first. Embedding
// models are left out. Each model gets the completion style when its
// template passes prompts through, chat otherwise. The choice depends only
// on the models (sizes, names, families, templates), so the same installed
// models give the same pool.
func ChoosePool(endpoint string, models []LocalModel) (Models, error) {
	var usable []LocalModel
	for _, m := range models {
		if !m.Embedding() {
			usable = append(usable, m)
		}
	}
	if len(usable) < 2 {
		return nil, fmt.Errorf("%w: the server at %s has %d usable model(s); a vote needs at least 2", ErrTooFewModels, endpoint, len(usable))
	}
	bySize := func(a, b LocalModel) int { return cmp.Or(cmp.Compare(b.Size, a.Size), strings.Compare(a.Name, b.Name)) }
	slices.SortFunc(usable, bySize)
	writer := usable[0]
	for _, m := range usable {
		if m.Base() {
			writer = m
			break
		}
	}
	families := map[string]bool{writer.Family: true}
	var ensemble []LocalModel
	rest := slices.DeleteFunc(slices.Clone(usable), func(m LocalModel) bool { return m.Name == writer.Name })
	for pass := 0; pass < 2 && len(ensemble) < 3; pass++ {
		for _, m := range rest {
			if len(ensemble) == 3 {
				break
			}
			if slices.ContainsFunc(ensemble, func(e LocalModel) bool { return e.Name == m.Name }) {
				continue
			}
			if pass == 0 && families[m.Family] {
				continue // other families first
			}
			families[m.Family] = true
			ensemble = append(ensemble, m)
		}
	}
	var out Models
	add := func(m LocalModel, roles ...Role) {
		out = append(out, NamedModel{Name: m.Name, ModelConfig: ModelConfig{
			Backend: BackendOllama, Model: m.Name, Endpoint: endpoint, Roles: roles, Style: m.Style()}})
	}
	add(writer, RoleInstructions, RoleInstances)
	for _, m := range ensemble {
		add(m, RoleEnsemble)
	}
	return out, nil
}

// SuggestedPool names a pool to pull for a machine with the given memory,
// from different families, as Ollama library names: what to tell a user
// whose server has too few models.
func SuggestedPool(memBytes uint64) []string {
	const gib = 1 << 30
	switch {
	case memBytes >= 32*gib:
		return []string{"llama3.1:8b", "qwen2.5:7b", "mistral:7b", "gemma2:9b"}
	case memBytes >= 16*gib:
		return []string{"llama3.2:3b", "qwen2.5:3b", "phi3.5:3.8b", "gemma2:2b"}
	}
	return []string{"llama3.2:1b", "qwen2.5:1.5b", "gemma2:2b"}
}
