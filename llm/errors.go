package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sentinel errors. Every error a Model or the Pool returns for a failed call
// wraps at most one of them; branch with errors.Is. The first five are
// transient and the Pool retries them; the others fail at once.
var (
	// ErrRateLimited: the server answered 429 Too Many Requests.
	ErrRateLimited = errors.New("rate limited")
	// ErrServer: the server answered with a 5xx status or reported an error
	// in the middle of a reply.
	ErrServer = errors.New("server error")
	// ErrTimeout: the call took longer than the endpoint's timeout (or the
	// server answered 408).
	ErrTimeout = errors.New("timed out")
	// ErrUnreachable: no connection could be made (refused, no route, DNS).
	ErrUnreachable = errors.New("not reachable")
	// ErrBadResponse: the reply was cut off or is not valid JSON (a
	// truncated body, a stream that ended before its last chunk, a
	// connection reset mid-reply).
	ErrBadResponse = errors.New("bad response")

	// ErrModelNotFound: the server does not serve the model (404).
	ErrModelNotFound = errors.New("model not found")
	// ErrAuth: the server rejected the credentials (401, 403), or the API
	// key variable is not set.
	ErrAuth = errors.New("authentication failed")
	// ErrBadRequest: the server rejected the request (400 and the other
	// 4xx statuses), or the Request itself is invalid.
	ErrBadRequest = errors.New("bad request")
)

// retryable reports whether a failed call is worth repeating.
func retryable(err error) bool {
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrServer) ||
		errors.Is(err, ErrTimeout) || errors.Is(err, ErrUnreachable) ||
		errors.Is(err, ErrBadResponse)
}

// errorKind names the kind of a failed call for accounting.
func errorKind(err error) string {
	switch {
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrServer):
		return "server"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrUnreachable):
		return "unreachable"
	case errors.Is(err, ErrBadResponse):
		return "bad_response"
	case errors.Is(err, ErrModelNotFound):
		return "model_not_found"
	case errors.Is(err, ErrAuth):
		return "auth"
	case errors.Is(err, ErrBadRequest):
		return "bad_request"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}

// maxErrorBody bounds the part of an error reply kept in a StatusError.
const maxErrorBody = 512

// StatusError is an HTTP error status from a model server. It unwraps to the
// sentinel for its status: ErrRateLimited (429), ErrAuth (401, 403),
// ErrModelNotFound (404 naming a model), ErrTimeout (408), ErrServer (5xx),
// ErrBadRequest (other 4xx).
type StatusError struct {
	// Backend and Endpoint say which server answered; Endpoint never
	// contains credentials.
	Backend  Backend
	Endpoint string
	// Model is the backend's model name.
	Model string
	// StatusCode is the HTTP status.
	StatusCode int
	// Body is the server's error message (or the start of its body),
	// at most 512 bytes, with the API key removed.
	Body string
	// RetryAfter is the wait the server asked for with Retry-After (0 when
	// it sent none).
	RetryAfter time.Duration

	// keyEnv is the API key variable, for the hint on auth errors.
	keyEnv string
}

// Error returns a one-line message naming the server, the model, the status
// and what to do about it.
func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s at %s, model %q: HTTP %d", e.Backend, e.Endpoint, e.Model, e.StatusCode)
	if e.Body != "" {
		b.WriteString(": ")
		b.WriteString(e.Body)
	}
	if h := e.hint(); h != "" {
		b.WriteString(" (")
		b.WriteString(h)
		b.WriteString(")")
	}
	return b.String()
}

func (e *StatusError) hint() string {
	spec, known := lookupBackend(e.Backend)
	switch kind := e.Unwrap(); {
	case kind == ErrModelNotFound && known:
		return spec.missingModelHint(e.Endpoint, e.Model)
	case e.StatusCode == http.StatusNotFound:
		return "check the endpoint URL"
	case kind == ErrAuth && e.keyEnv != "":
		return "check $" + e.keyEnv
	case kind == ErrAuth:
		return "check the endpoint's credentials"
	}
	return ""
}

// Unwrap returns the sentinel error for the status.
func (e *StatusError) Unwrap() error {
	switch c := e.StatusCode; {
	case c == http.StatusTooManyRequests:
		return ErrRateLimited
	case c == http.StatusUnauthorized, c == http.StatusForbidden:
		return ErrAuth
	case c == http.StatusNotFound:
		if strings.Contains(strings.ToLower(e.Body), "model") {
			return ErrModelNotFound
		}
		return ErrBadRequest
	case c == http.StatusRequestTimeout:
		return ErrTimeout
	case c == http.StatusNotImplemented, c == http.StatusHTTPVersionNotSupported:
		return ErrBadRequest
	case c >= 500:
		return ErrServer
	}
	return ErrBadRequest
}

// callError is a failed call that is not an HTTP status: the connection,
// the timeout or the body went wrong.
type callError struct {
	backend  Backend
	endpoint string
	model    string
	kind     error // one of the sentinels
	err      error // the underlying error; may be nil
}

func (e *callError) Error() string {
	var msg string
	switch e.kind {
	case ErrUnreachable:
		msg = fmt.Sprintf("%s at %s is not reachable", e.backend, e.endpoint)
		if spec, ok := lookupBackend(e.backend); ok && spec.startHint != "" {
			msg += "; " + spec.startHint
		}
	case ErrTimeout:
		msg = fmt.Sprintf("%s at %s, model %q: timed out", e.backend, e.endpoint, e.model)
	case ErrBadResponse:
		msg = fmt.Sprintf("%s at %s, model %q: bad response", e.backend, e.endpoint, e.model)
	default:
		msg = fmt.Sprintf("%s at %s, model %q: %v", e.backend, e.endpoint, e.model, e.kind)
	}
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg
}

func (e *callError) Unwrap() []error {
	if e.err == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.err}
}

// classifyTransport turns an error from sending a request or reading its
// reply into a callError with the right sentinel. ctx is the call's context.
// A cancelled ctx is returned as is, so callers see context.Canceled.
func classifyTransport(ctx context.Context, backend Backend, endpoint, model string, err error) error {
	if ctx.Err() == context.Canceled {
		return ctx.Err()
	}
	ce := &callError{backend: backend, endpoint: endpoint, model: model, err: unwrapURLError(err)}
	var ne net.Error
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case ctx.Err() == context.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
		ce.kind = ErrTimeout
		ce.err = nil
	case errors.As(err, &ne) && ne.Timeout():
		ce.kind = ErrTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EADDRNOTAVAIL),
		errors.As(err, &dnsErr):
		ce.kind = ErrUnreachable
	case errors.As(err, &opErr) && opErr.Op == "dial":
		ce.kind = ErrUnreachable
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		ce.kind = ErrBadResponse
	default:
		// TLS failures, malformed URLs and the like: retrying will not help.
		ce.kind = ErrBadRequest
	}
	return ce
}

// unwrapURLError drops the *url.Error layer, whose message repeats the
// method and URL (which the callError already names).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// It returns 0 when the header is absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs > maxRetryAfter.Seconds() {
			return maxRetryAfter
		}
		return clampRetryAfter(time.Duration(secs * float64(time.Second)))
	}
	if t, err := http.ParseTime(v); err == nil {
		return clampRetryAfter(t.Sub(now))
	}
	return 0
}

// maxRetryAfter caps what a server may make us wait in one go.
const maxRetryAfter = 10 * time.Minute

func clampRetryAfter(d time.Duration) time.Duration {
	return min(max(d, 0), maxRetryAfter)
}

// truncateBody keeps the first maxErrorBody bytes of an error body, on a
// UTF-8 boundary, with secret removed.
func truncateBody(body, secret string) string {
	body = strings.TrimSpace(body)
	if secret != "" {
		body = strings.ReplaceAll(body, secret, "[redacted]")
	}
	if len(body) <= maxErrorBody {
		return body
	}
	cut := maxErrorBody
	for cut > 0 && body[cut]&0xC0 == 0x80 {
		cut--
	}
	return body[:cut] + "…"
}
