package llm

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// This file holds what executors that run calls elsewhere (on other
// machines, in batch jobs) need from the package: the resolved limits of a
// model's endpoint, the token estimate the limits charge, the sentinel of
// an error kind, and a walk over a response cache.

// EndpointLimits returns the limits of the endpoint that serves the model
// called name, with the backend's defaults applied.
func (p *Pool) EndpointLimits(name string) (EndpointConfig, bool) {
	m, ok := p.byName[name]
	if !ok {
		return EndpointConfig{}, false
	}
	return m.ep.cfg, true
}

// EstimateTokens is what a tokens_per_minute limit charges for req before
// the call: the prompt at 4 bytes a token, plus MaxTokens.
func EstimateTokens(req Request) int { return estimateTokens(req) }

// ErrorOfKind returns the sentinel error of a kind as ErrorKind names it
// (rate_limited, server, timeout, ...), or nil for canceled, other and
// unknown kinds.
func ErrorOfKind(kind string) error {
	for _, e := range []error{ErrRateLimited, ErrServer, ErrTimeout, ErrUnreachable, ErrBadResponse, ErrModelNotFound, ErrAuth, ErrBadRequest} {
		if errorKind(e) == kind {
			return e
		}
	}
	return nil
}

// Range calls fn for every stored response, in key order, until fn
// returns an error (which Range returns), after committing any queued
// ones. fn must not write to the cache.
func (c *Cache) Range(fn func(key string, r Response) error) error {
	if err := c.Flush(); err != nil {
		return err
	}
	return c.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(responsesBucket).ForEach(func(k, v []byte) error {
			var r Response
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("response cache %s: reading %s: %w", c.path, k, err)
			}
			return fn(string(k), r)
		})
	})
}
