package jetstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ensinstruct/ensinstruct/llm"
)

// callMsg is the body of a queued call. It names the model and carries
// the request as the pipeline built it; a worker resolves the model in its
// own configuration (with its own keys) and checks that the cache key it
// computes is this one. No header, key or endpoint credential is sent.
type callMsg struct {
	Key     string      `json:"key"`
	Model   string      `json:"model"`
	Sample  int         `json:"sample"`
	Request llm.Request `json:"request"`
}

// stored is a results bucket value: the response in the local cache's
// encoding, so that results move between the two unchanged.
type stored struct {
	llm.Response
}

// failure is a failures bucket value: a call that failed for good.
type failure struct {
	Model string `json:"model"`
	// Kind is llm.ErrorKind of the last error.
	Kind string `json:"kind"`
	// Error is the worker's error message (no secrets: llm errors never
	// carry keys or header values).
	Error string `json:"error"`
	// Deliveries is how many times the call was handed to a worker.
	Deliveries int `json:"deliveries"`
	// Seq is the stream sequence of the message that failed: while a
	// worker takes it off the queue, it is still there, and a
	// coordinator must not wait for it.
	Seq uint64 `json:"seq"`
}

// headroom is what a message needs beyond its body: the subject, the
// Nats-Msg-Id header and the protocol line.
const headroom = 512

// checkSize fails when a message body of n bytes would not fit the
// server's max payload.
func checkSize(what string, n int, maxPayload int64) error {
	if maxPayload > 0 && int64(n)+headroom > maxPayload {
		return fmt.Errorf("%w: %s is %d bytes, over the NATS server's max_payload of %d bytes; raise max_payload in the server's configuration",
			llm.ErrBadRequest, what, n, maxPayload)
	}
	return nil
}

// RemoteError is the error of a call that failed for good on a worker.
// It unwraps to the llm sentinel of its kind (llm.ErrAuth, ...), when
// there is one.
type RemoteError struct {
	// Model is the model's name in the pool.
	Model string
	// Kind is llm.ErrorKind of the worker's last error.
	Kind string
	// Msg is the worker's error message.
	Msg string
	// Deliveries is how many times the call was handed to a worker.
	Deliveries int
}

// Error says which model failed, how often it was tried and why.
func (e *RemoteError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "model %q: failed on a worker", e.Model)
	if e.Deliveries > 0 {
		fmt.Fprintf(&b, " (delivered %d times)", e.Deliveries)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the sentinel of the failure's kind, or nil.
func (e *RemoteError) Unwrap() error { return llm.ErrorOfKind(e.Kind) }

func (f failure) err() error {
	return &RemoteError{Model: f.Model, Kind: f.Kind, Msg: f.Error, Deliveries: f.Deliveries}
}

func decodeFailure(b []byte) (failure, error) {
	var f failure
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("jetstream: failure record: %w", err)
	}
	if f.Error == "" {
		return f, errors.New("jetstream: failure record without an error")
	}
	return f, nil
}
