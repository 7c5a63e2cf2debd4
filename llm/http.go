package llm

import (
	"io"
	"net/http"
	"os"
	"strings"
)

// newHTTPClient returns the client a Pool uses when none is injected: the
// direct transport for plain http:// (h1Transport) over the default one,
// with enough idle connections per host for every slot of a busy endpoint
// (the standard library keeps 2, which makes a pool with more concurrency
// open and close connections all the time). Timeouts come from each
// call's context.
func newHTTPClient() *http.Client { return newHTTPClientFor(64) }

// newHTTPClientFor returns the shared client for a pool whose busiest host
// may have perHost calls in flight at once: it keeps that many idle
// connections to each host (at least 64), so that a connection that
// finishes a call is kept for the next one instead of being closed and
// dialled again.
func newHTTPClientFor(perHost int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(64, perHost)
	t.MaxIdleConns = max(256, t.MaxIdleConnsPerHost)
	// A request is written in one piece, on either path: the default
	// 4 KiB buffer splits an instance prompt with its demonstrations
	// (4-7 KiB) in two.
	t.WriteBufferSize = 32 << 10
	return &http.Client{Transport: newH1Transport(t)}
}

// userAgent is sent with every request.
const userAgent = "ensinstruct (+https://github.com/ensinstruct/ensinstruct)"

// replyInfo records what the OpenAI-compatible client does not pass on: the
// status and Retry-After of the last reply. The backend puts one in the
// request context; headerDoer fills it.
type replyInfo struct {
	status     int
	retryAfter string
}

type replyInfoKey struct{}

// headerDoer is the http client given to go-openai: it adds the model's
// extra headers and records the status and Retry-After of each reply.
type headerDoer struct {
	client *http.Client
	header http.Header
}

// Do sends req with the extra headers.
func (d *headerDoer) Do(req *http.Request) (*http.Response, error) {
	for k, v := range d.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := d.client.Do(req)
	if err == nil {
		if info, ok := req.Context().Value(replyInfoKey{}).(*replyInfo); ok {
			info.status = resp.StatusCode
			info.retryAfter = resp.Header.Get("Retry-After")
		}
		resp.Body = drainOnClose{resp.Body}
	}
	return resp, err
}

// drainOnClose reads what is left of a body (a trailing newline after the
// JSON the client decoded) before closing it, so the connection can be
// reused; it reads at most 4 KiB, never waiting on a server that keeps
// sending.
type drainOnClose struct{ io.ReadCloser }

func (d drainOnClose) Close() error {
	io.Copy(io.Discard, io.LimitReader(d.ReadCloser, 4<<10))
	return d.ReadCloser.Close()
}

// expandHeaders returns the configured headers with $NAME and ${NAME}
// references expanded through getenv, and the values that came from the
// environment (secrets: they are redacted wherever a server echoes them).
// A referenced variable that is unset is an error naming it; the value
// itself is never part of an error.
func expandHeaders(h map[string]string, getenv func(string) string) (map[string]string, []string, error) {
	if len(h) == 0 {
		return nil, nil, nil
	}
	out := make(map[string]string, len(h))
	var secrets []string
	for k, v := range h {
		var missing string
		expanded := false
		val := os.Expand(v, func(name string) string {
			expanded = true
			s := getenv(name)
			if s == "" && missing == "" {
				missing = name
			}
			if s != "" {
				secrets = append(secrets, s)
			}
			return s
		})
		if missing != "" {
			return nil, nil, FieldErrorf([]string{"headers", k}, "environment variable %s is not set", missing)
		}
		out[k] = strings.TrimSpace(val)
		if expanded {
			secrets = append(secrets, out[k])
		}
	}
	return out, secrets, nil
}
