package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
)

// The statuses of a batch job.
const (
	statusValidating = "validating"
	statusInProgress = "in_progress"
	statusFinalizing = "finalizing"
	statusCompleted  = "completed"
	statusFailed     = "failed"
	statusExpired    = "expired"
	statusCancelling = "cancelling"
	statusCancelled  = "cancelled"
)

// terminal reports whether a job in status s will change no more.
func terminal(s string) bool {
	switch s {
	case statusCompleted, statusFailed, statusExpired, statusCancelled:
		return true
	}
	return false
}

// batchObject is a batch job as the API returns it (the fields the
// executor reads).
type batchObject struct {
	ID            string            `json:"id"`
	Object        string            `json:"object"`
	Endpoint      string            `json:"endpoint"`
	Status        string            `json:"status"`
	InputFileID   string            `json:"input_file_id"`
	OutputFileID  string            `json:"output_file_id,omitempty"`
	ErrorFileID   string            `json:"error_file_id,omitempty"`
	CreatedAt     int64             `json:"created_at"`
	RequestCounts requestCounts     `json:"request_counts"`
	Errors        *batchErrors      `json:"errors,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
}

// requestCounts are a job's request counts so far.
type requestCounts struct {
	Total     int `json:"total"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
}

// batchErrors are the problems that failed a job (its validation,
// mostly).
type batchErrors struct {
	Object string       `json:"object"`
	Data   []batchError `json:"data"`
}

// batchError is one problem of a failed job.
type batchError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
	Line    *int   `json:"line,omitempty"`
}

func (e *batchErrors) String() string {
	if e == nil || len(e.Data) == 0 {
		return ""
	}
	var parts []string
	for _, d := range e.Data {
		s := d.Code + ": " + d.Message
		if d.Line != nil {
			s = fmt.Sprintf("line %d: %s", *d.Line, s)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// outputLine is one line of an output or error file.
type outputLine struct {
	ID       string          `json:"id"`
	CustomID string          `json:"custom_id"`
	Response *outputResponse `json:"response"`
	Error    *outputError    `json:"error"`
}

// outputResponse is the reply a request got.
type outputResponse struct {
	StatusCode int             `json:"status_code"`
	RequestID  string          `json:"request_id"`
	Body       json.RawMessage `json:"body"`
}

// outputError is why a request got no reply (batch_expired,
// batch_cancelled, ...).
type outputError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// fileObject is an uploaded file.
type fileObject struct {
	ID       string `json:"id"`
	Object   string `json:"object"`
	Bytes    int64  `json:"bytes"`
	Filename string `json:"filename"`
	Purpose  string `json:"purpose"`
}

type listPage struct {
	Data    []batchObject `json:"data"`
	HasMore bool          `json:"has_more"`
	LastID  string        `json:"last_id"`
}

// client speaks a server's Files and Batches APIs as one model's client.
type client struct {
	access llm.OpenAIAccess
	http   *http.Client
	model  string // the server's model name, for errors
}

// maxErrorBody bounds the part of an error reply kept in an error.
const maxErrorBody = 512

// call sends one request and decodes a JSON reply into out (nil: the
// caller reads resp.Body, which it must close).
func (c *client) call(ctx context.Context, method, path string, body []byte, contentType string, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.access.BaseURL+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", llm.ErrBadRequest, err)
	}
	for k, v := range c.access.Header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.access.Scrub(fmt.Errorf("%s %s%s: %w: %v", method, c.access.Endpoint, path, llm.ErrUnreachable, err))
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, c.access.Scrub(&llm.StatusError{
			Backend: llm.BackendOpenAI, Endpoint: c.access.Endpoint + path, Model: c.model,
			StatusCode: resp.StatusCode, Body: errorBody(b), RetryAfter: retryAfter(resp.Header.Get("Retry-After")),
		})
	}
	if out == nil {
		return resp, nil
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s %s%s: %w: %v", method, c.access.Endpoint, path, llm.ErrBadResponse, err)
	}
	return nil, nil
}

// errorBody is the message of an API error reply, or its start.
func errorBody(b []byte) string {
	var e struct {
		Error struct {
			Code    any    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	s := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		s = e.Error.Message
		if code, ok := e.Error.Code.(string); ok && code != "" {
			s = code + ": " + s
		}
	}
	if len(s) > maxErrorBody {
		s = s[:maxErrorBody] + "…"
	}
	return s
}

func retryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 0
}

// upload stores an input file with purpose "batch".
func (c *client) upload(ctx context.Context, name string, data []byte) (fileObject, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("purpose", "batch"); err != nil {
		return fileObject{}, err
	}
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
	h.Set("Content-Type", "application/jsonl")
	w, err := mw.CreatePart(h)
	if err != nil {
		return fileObject{}, err
	}
	w.Write(data)
	if err := mw.Close(); err != nil {
		return fileObject{}, err
	}
	var f fileObject
	_, err = c.call(ctx, http.MethodPost, "/files", buf.Bytes(), mw.FormDataContentType(), &f)
	if err == nil && f.ID == "" {
		err = fmt.Errorf("uploading %s: %w: the reply names no file", name, llm.ErrBadResponse)
	}
	return f, err
}

// create starts a job on an uploaded file.
func (c *client) create(ctx context.Context, fileID, endpoint string, meta map[string]string) (batchObject, error) {
	body, _ := json.Marshal(map[string]any{
		"input_file_id": fileID, "endpoint": endpoint, "completion_window": CompletionWindow, "metadata": meta,
	})
	var b batchObject
	_, err := c.call(ctx, http.MethodPost, "/batches", body, "application/json", &b)
	if err == nil && b.ID == "" {
		err = fmt.Errorf("creating a batch job: %w: the reply names no job", llm.ErrBadResponse)
	}
	return b, err
}

// get reads a job.
func (c *client) get(ctx context.Context, id string) (batchObject, error) {
	var b batchObject
	_, err := c.call(ctx, http.MethodGet, "/batches/"+url.PathEscape(id), nil, "", &b)
	return b, err
}

// find returns the job created on fileID, looking at the jobs created
// since (newest first), or ok false when there is none.
func (c *client) find(ctx context.Context, fileID string, since time.Time) (b batchObject, ok bool, err error) {
	after := ""
	for {
		q := url.Values{"limit": {"100"}}
		if after != "" {
			q.Set("after", after)
		}
		var page listPage
		if _, err := c.call(ctx, http.MethodGet, "/batches?"+q.Encode(), nil, "", &page); err != nil {
			return batchObject{}, false, err
		}
		for _, o := range page.Data {
			if o.InputFileID == fileID {
				return o, true, nil
			}
		}
		if !page.HasMore || page.LastID == "" || len(page.Data) == 0 ||
			time.Unix(page.Data[len(page.Data)-1].CreatedAt, 0).Before(since) {
			return batchObject{}, false, nil
		}
		after = page.LastID
	}
}

// content opens a file's content.
func (c *client) content(ctx context.Context, fileID string) (io.ReadCloser, error) {
	resp, err := c.call(ctx, http.MethodGet, "/files/"+url.PathEscape(fileID)+"/content", nil, "", nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// retryable reports whether a failed API request may be repeated.
func retryable(err error) bool {
	return llm.Retryable(err) && !errors.Is(err, context.Canceled)
}
