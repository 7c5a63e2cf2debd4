package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// CheckReachable dials every endpoint of the pool once, concurrently, and
// returns an error for each that refuses or does not answer within
// timeout: a fast preflight, so that a server nobody started is reported in
// a second with one clear line instead of after a minute of retries. Each
// error matches ErrUnreachable (errors.Is) and says, for Ollama, how to
// start it. Models given a custom backend (WithBackend) are not dialed.
// Safe for concurrent use.
func (p *Pool) CheckReachable(ctx context.Context, timeout time.Duration) error {
	type target struct {
		backend Backend
		url     string
	}
	seen := map[string]bool{}
	var targets []target
	for _, m := range p.models {
		if !m.dial && m.missingKey == "" {
			continue
		}
		if !seen[m.ep.url] {
			seen[m.ep.url] = true
			targets = append(targets, target{m.info.Backend, m.ep.url})
		}
	}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = dialEndpoint(ctx, t.backend, t.url, timeout)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func dialEndpoint(ctx context.Context, backend Backend, raw string, timeout time.Duration) error {
	u, err := url.Parse(raw)
	if err != nil {
		return &callError{backend: backend, endpoint: raw, kind: ErrUnreachable, err: err}
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", host)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &callError{backend: backend, endpoint: raw, kind: ErrUnreachable, err: unwrapDialError(err)}
	}
	return conn.Close()
}

// unwrapDialError keeps the cause of a dial failure ("connection refused")
// without the addresses the message already names.
func unwrapDialError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// CheckModels asks every server that can tell (Ollama, through
// /api/show) whether it has the models of the pool, concurrently, and
// returns an error for each model it lacks, with the command that gets
// it: a preflight, so that a missing ensemble model is reported before the
// run rather than at its first call. Servers that cannot tell, and models
// given a custom backend, are not asked. Safe for concurrent use.
func (p *Pool) CheckModels(ctx context.Context, timeout time.Duration) error {
	var wg sync.WaitGroup
	errs := make([]error, len(p.models))
	for i, m := range p.models {
		spec, ok := lookupBackend(m.info.Backend)
		o, isOllama := m.backend.(*Ollama)
		if !ok || spec.probe == nil || !m.dial || !isOllama {
			continue
		}
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			errs[i] = m.redact.scrub(spec.probe(pctx, o.client, o.base, o.header, o.model))
			if errs[i] != nil {
				errs[i] = fmt.Errorf("model %q: %w", m.info.Name, errs[i])
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// probeOllama asks an Ollama server for a model with /api/show.
func probeOllama(ctx context.Context, client *http.Client, base string, header http.Header, model string) error {
	body, _ := json.Marshal(map[string]string{"model": model})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/show", bytes.NewReader(body))
	if err != nil {
		return nil
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		return nil // the reachability check reports servers that are down
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		return nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	msg := string(raw)
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	se := &StatusError{Backend: BackendOllama, Endpoint: redactURL(base), Model: model,
		StatusCode: resp.StatusCode, Body: truncateBody(msg, "")}
	if !errors.Is(se, ErrModelNotFound) {
		return nil // a 404 that is not about the model: an old server or a proxy
	}
	return se
}
