package llm

import (
	"context"
	"errors"
	"net"
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
