package jetstream

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// outage bounds how long an operation is retried while NATS is away (a
// server restarting, a cluster electing a leader) before it fails.
const outage = 2 * time.Minute

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

func permanent(err error) error { return permanentError{err} }

// transient reports whether err may go away if the operation is repeated:
// timeouts (of the operation, while ctx is live), no responders and
// server errors do; a closed connection, a cancelled ctx and a request the
// server rejected do not.
func transient(ctx context.Context, err error) bool {
	var p permanentError
	var api *jetstream.APIError
	switch {
	case ctx.Err() != nil, errors.As(err, &p), errors.Is(err, context.Canceled),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrBadSubject),
		errors.Is(err, nats.ErrMaxPayload):
		return false
	case errors.As(err, &api):
		return api.Code >= 500 || api.Code == 408 || api.Code == 0
	}
	return true
}

// attemptTimeout bounds one attempt of an operation: a request sent just
// before a server went away gets no answer, and is better sent again on
// the new connection than waited for.
const attemptTimeout = 2 * time.Second

// retry runs op until it succeeds, fails for good, ctx is done or NATS
// has been away for longer than outage. Each attempt gets its own
// deadline.
func retry(ctx context.Context, op func(ctx context.Context) error) error {
	deadline := time.Now().Add(outage)
	wait := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := op(actx)
		cancel()
		if err == nil || !transient(ctx, err) || time.Now().After(deadline) {
			var p permanentError
			if errors.As(err, &p) {
				return p.err
			}
			return err
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(wait*2, 2*time.Second)
	}
}
