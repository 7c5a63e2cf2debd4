package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// PullProgress is one status line of a model being pulled: what the server
// is doing, and for a layer being downloaded its size and how much of it
// has arrived.
type PullProgress struct {
	Model     string `json:"model"`
	Status    string `json:"status"`
	Digest    string `json:"digest,omitempty"`
	Total     int64  `json:"total,omitempty"`
	Completed int64  `json:"completed,omitempty"`
}

// PullOllama has the Ollama server at endpoint pull model (/api/pull,
// streamed), calling progress with every status line. It returns when the
// server reports success, or an error: the server's own message when it
// reports one, ErrBadResponse when the stream ends without success. A nil
// client means a default one.
func PullOllama(ctx context.Context, client *http.Client, endpoint, model string, progress func(PullProgress)) error {
	if client == nil {
		client = newHTTPClient()
	}
	base, err := normalizeURL(endpoint)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"model": model, "stream": true})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/pull", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		return classifyTransport(ctx, BackendOllama, redactURL(base), model, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		msg := string(raw)
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &StatusError{Backend: BackendOllama, Endpoint: redactURL(base), Model: model, StatusCode: resp.StatusCode, Body: truncateBody(msg, "")}
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var line struct {
			PullProgress
			Error string `json:"error"`
		}
		if err := dec.Decode(&line); err != nil {
			if errors.Is(err, io.EOF) {
				return &callError{BackendOllama, redactURL(base), model, ErrBadResponse, errors.New("the pull ended before it succeeded")}
			}
			return classifyTransport(ctx, BackendOllama, redactURL(base), model, err)
		}
		if line.Error != "" {
			return fmt.Errorf("pulling %s from %s: %s", model, redactURL(base), truncateBody(line.Error, ""))
		}
		line.PullProgress.Model = model
		if progress != nil {
			progress(line.PullProgress)
		}
		if line.Status == "success" {
			return nil
		}
	}
}
