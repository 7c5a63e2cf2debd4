package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ollama/ollama/api"
)

// Ollama is a Model served by Ollama's native API: completion-style requests
// go to /api/generate with raw: true (the prompt is sent as is, without the
// model's template), chat-style requests to /api/chat. It is safe for
// concurrent use.
//
// It speaks HTTP itself, with the request types of
// github.com/ollama/ollama/api, rather than through api.Client: that client
// hides the reply headers (so Retry-After is lost), reports a stream that
// ends early as success, and allocates an 8 MiB line buffer per call.
type Ollama struct {
	model    string
	base     string // normalized endpoint URL, may hold credentials
	endpoint string // the same without credentials, for errors
	client   *http.Client
	header   http.Header // the configured headers
	// reqHeader is every model request's headers: the configured ones,
	// then the content type, accept and user agent. Requests share it
	// and nothing may change it.
	reqHeader http.Header
	options   map[string]any
	keepAlive *api.Duration
	// maxCtx caps the context window asked for; ctx is the largest asked
	// so far (the window never shrinks, so that the server does not
	// reload the model for every other request). Both are 0 when the
	// options fix num_ctx.
	maxCtx int
	ctx    atomic.Int64
}

// Context sizing. A request asks for a window of
// nextPow2(promptBytes/bytesPerToken + max_tokens + ctxSlack) tokens, at
// least minCtx, at most the model's max_context. bytesPerToken is
// conservative: English BPE tokenizers spend about 4 bytes a token,
// SentencePiece ones 3 to 4, and the small vocabularies of tiny models
// about 2.3 (measured on our instruction prompts).
const (
	bytesPerToken = 2
	ctxSlack      = 64
	minCtx        = 2048
)

// NewOllama returns the Ollama model mc describes. mc.Endpoint defaults to
// http://localhost:11434 (the Pool resolves OLLAMA_HOST before calling
// this); mc.Headers are sent as they are. A nil client means a default one.
func NewOllama(mc ModelConfig, client *http.Client) (*Ollama, error) {
	if mc.Model == "" {
		return nil, errors.New("ollama: missing model name")
	}
	if mc.Endpoint == "" {
		mc.Endpoint = DefaultOllamaURL
	}
	base, err := normalizeURL(mc.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("ollama: endpoint: %w", err)
	}
	if client == nil {
		client = newHTTPClient()
	}
	o := &Ollama{
		model:    mc.Model,
		base:     base,
		endpoint: redactURL(base),
		client:   client,
		options:  maps.Clone(mc.Options),
	}
	if len(mc.Headers) > 0 {
		o.header = make(http.Header, len(mc.Headers))
		for k, v := range mc.Headers {
			o.header.Set(k, v)
		}
	}
	o.reqHeader = make(http.Header, len(o.header)+3)
	for k, v := range o.header {
		o.reqHeader[k] = v
	}
	o.reqHeader.Set("Content-Type", "application/json")
	o.reqHeader.Set("Accept", "application/x-ndjson, application/json")
	o.reqHeader.Set("User-Agent", userAgent)
	if mc.KeepAlive != nil {
		o.keepAlive = &api.Duration{Duration: *mc.KeepAlive}
	}
	if _, fixed := mc.Options["num_ctx"]; !fixed {
		o.maxCtx = mc.MaxContext
		if o.maxCtx == 0 {
			o.maxCtx = DefaultOllamaMaxContext
		}
	}
	return o, nil
}

// ollamaChunk is one JSON object of an /api/generate or /api/chat reply
// (the whole reply when not streaming): the fields of api.GenerateResponse
// and api.ChatResponse that matter here, plus the error field.
type ollamaChunk struct {
	Response string `json:"response"`
	Message  struct {
		Content string `json:"content"`
	} `json:"message"`
	Done            bool   `json:"done"`
	DoneReason      string `json:"done_reason"`
	PromptEvalCount int    `json:"prompt_eval_count"`
	EvalCount       int    `json:"eval_count"`
	Error           string `json:"error"`
}

// Generate sends req once. It asks for a single JSON reply (stream: false)
// but reads any number of newline-delimited chunks, so a streamed reply
// works too; a reply without its final chunk is ErrBadResponse.
func (o *Ollama) Generate(ctx context.Context, req Request) (Response, error) {
	if err := req.validate(); err != nil {
		return Response{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	numCtx := o.contextFor(req)
	path, body, err := o.encode(req, numCtx)
	if err != nil {
		return Response{}, fmt.Errorf("%w: encoding the request: %w", ErrBadRequest, err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, o.base+path, bytes.NewReader(body))
	if err != nil {
		return Response{}, &callError{BackendOllama, o.endpoint, o.model, ErrBadRequest, err}
	}
	// net/http only reads a request's headers (a client that must add
	// one, for credentials in the URL, copies them first).
	hreq.Header = o.reqHeader

	start := time.Now()
	resp, err := o.client.Do(hreq)
	if err != nil {
		return Response{}, classifyTransport(ctx, BackendOllama, o.endpoint, o.model, err)
	}
	rbody := drainOnClose{resp.Body}
	defer rbody.Close()

	if resp.StatusCode >= 300 {
		return Response{}, o.statusError(resp)
	}
	out, err := o.decode(ctx, rbody)
	if err != nil {
		return Response{}, err
	}
	out.Latency = time.Since(start)
	out.Truncated = truncated(out.PromptTokens, numCtx)
	return out, nil
}

// contextFor returns the num_ctx to send with req: 0 when the options fix
// it, else a window that holds the whole prompt and reply (see the
// constants above), never smaller than one asked for before.
func (o *Ollama) contextFor(req Request) int {
	if o.maxCtx == 0 {
		switch n := o.options["num_ctx"].(type) {
		case int:
			return n
		case int64:
			return int(n)
		case float64:
			return int(n)
		}
		return 0
	}
	n := len(req.Prompt)
	for _, m := range req.Messages {
		n += len(m.Content) + 16
	}
	need := max(n/bytesPerToken+req.MaxTokens+ctxSlack, minCtx)
	c := minCtx
	for c < need {
		c *= 2
	}
	c = min(c, o.maxCtx)
	for {
		cur := o.ctx.Load()
		if int64(c) <= cur {
			return int(cur)
		}
		if o.ctx.CompareAndSwap(cur, int64(c)) {
			return c
		}
	}
}

// truncated reports whether a prompt of n evaluated tokens was cut to a
// window of numCtx: Ollama keeps either the whole window (up to 0.6) or
// half of it plus a few tokens (later versions) of a prompt that does not
// fit, and says nothing.
func truncated(n, numCtx int) bool {
	if n == 0 || numCtx == 0 {
		return false
	}
	return n >= numCtx-1 || (n >= numCtx/2 && n <= numCtx/2+4)
}

// encode builds the request body and picks the API path. Without extra
// Ollama options it writes the body itself (appendRequest), a quarter of
// json.Marshal's CPU for a few-kilobyte prompt; with them it marshals
// the API types. Both give the same bytes.
func (o *Ollama) encode(req Request, numCtx int) (string, []byte, error) {
	if len(o.options) > 0 {
		return o.encodeTypes(req, numCtx)
	}
	path := "/api/generate"
	if req.Chat() {
		path = "/api/chat"
	}
	body, err := o.appendRequest(make([]byte, 0, o.bodySize(req)), req, numCtx)
	return path, body, err
}

// encodeTypes is encode through json.Marshal of the API types.
func (o *Ollama) encodeTypes(req Request, numCtx int) (string, []byte, error) {
	opts := make(map[string]any, len(o.options)+7)
	maps.Copy(opts, o.options)
	if numCtx > 0 && o.maxCtx > 0 {
		opts["num_ctx"] = numCtx
	}
	opts["temperature"] = req.Temperature
	if req.TopP > 0 {
		opts["top_p"] = req.TopP
	}
	if req.TopK > 0 {
		opts["top_k"] = req.TopK
	}
	if req.Seed != nil {
		opts["seed"] = *req.Seed
	}
	if req.MaxTokens > 0 {
		opts["num_predict"] = req.MaxTokens
	}
	if len(req.Stop) > 0 {
		opts["stop"] = req.Stop
	}
	stream := false
	if req.Chat() {
		msgs := make([]api.Message, len(req.Messages))
		for i, m := range req.Messages {
			msgs[i] = api.Message{Role: m.Role, Content: m.Content}
		}
		body, err := json.Marshal(&api.ChatRequest{
			Model:     o.model,
			Messages:  msgs,
			Stream:    &stream,
			KeepAlive: o.keepAlive,
			Options:   opts,
		})
		return "/api/chat", body, err
	}
	body, err := json.Marshal(&api.GenerateRequest{
		Model:     o.model,
		Prompt:    req.Prompt,
		Raw:       true,
		Stream:    &stream,
		KeepAlive: o.keepAlive,
		Options:   opts,
	})
	return "/api/generate", body, err
}

// bodySize is room for the body of req with a little escaping.
func (o *Ollama) bodySize(req Request) int {
	n := 256 + len(o.model) + len(req.Prompt)
	for _, m := range req.Messages {
		n += 32 + len(m.Role) + len(m.Content)
	}
	for _, st := range req.Stop {
		n += 8 + len(st)
	}
	return n + n/16
}

// appendRequest appends the body json.Marshal gives of the API request
// for req with no extra options: the struct's fields in their order, and
// the options' keys sorted as a map's are.
func (o *Ollama) appendRequest(b []byte, req Request, numCtx int) ([]byte, error) {
	b = append(b, `{"model":`...)
	b = appendJSONString(b, o.model)
	if req.Chat() {
		b = append(b, `,"messages":[`...)
		for i, m := range req.Messages {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"role":`...)
			b = appendJSONString(b, m.Role)
			b = append(b, `,"content":`...)
			b = appendJSONString(b, m.Content)
			b = append(b, '}')
		}
		b = append(b, `],"stream":false`...)
	} else {
		b = append(b, `,"prompt":`...)
		b = appendJSONString(b, req.Prompt)
		b = append(b, `,"suffix":"","system":"","template":"","stream":false,"raw":true`...)
	}
	if o.keepAlive != nil {
		b = append(b, `,"keep_alive":`...)
		if o.keepAlive.Duration < 0 {
			b = append(b, "-1"...)
		} else {
			b = appendJSONString(b, o.keepAlive.Duration.String())
		}
	}
	b = append(b, `,"options":{`...)
	// Sorted: num_ctx, num_predict, seed, stop, temperature, top_k, top_p.
	if numCtx > 0 && o.maxCtx > 0 {
		b = append(b, `"num_ctx":`...)
		b = strconv.AppendInt(b, int64(numCtx), 10)
		b = append(b, ',')
	}
	if req.MaxTokens > 0 {
		b = append(b, `"num_predict":`...)
		b = strconv.AppendInt(b, int64(req.MaxTokens), 10)
		b = append(b, ',')
	}
	if req.Seed != nil {
		b = append(b, `"seed":`...)
		b = strconv.AppendInt(b, *req.Seed, 10)
		b = append(b, ',')
	}
	if len(req.Stop) > 0 {
		b = append(b, `"stop":[`...)
		for i, st := range req.Stop {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, st)
		}
		b = append(b, "],"...)
	}
	var err error
	b = append(b, `"temperature":`...)
	if b, err = appendJSONFloat(b, req.Temperature); err != nil {
		return nil, err
	}
	if req.TopK > 0 {
		b = append(b, `,"top_k":`...)
		b = strconv.AppendInt(b, int64(req.TopK), 10)
	}
	if req.TopP > 0 {
		b = append(b, `,"top_p":`...)
		if b, err = appendJSONFloat(b, req.TopP); err != nil {
			return nil, err
		}
	}
	return append(b, "}}"...), nil
}

// decode reads the reply chunks until the final one. It reads the whole
// body first and parses what Ollama writes itself (parseChunk); from the
// first chunk it declines, it falls back to encoding/json, which then
// sees the bytes, and the read error if there was one, as it would have.
func (o *Ollama) decode(ctx context.Context, body io.Reader) (Response, error) {
	buf := replyBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			buf.Reset()
			replyBufs.Put(buf)
		}
	}()
	_, rerr := buf.ReadFrom(body)
	b := buf.Bytes()
	var text strings.Builder
	for {
		var c ollamaChunk
		n, ok := parseChunk(b, &c)
		if !ok {
			rest := io.Reader(bytes.NewReader(b))
			if rerr != nil {
				rest = io.MultiReader(rest, errReader{rerr})
			}
			return o.decodeStream(ctx, rest, &text)
		}
		b = b[n:]
		if r, done, err := o.chunk(c, &text); done {
			return r, err
		}
	}
}

// errReader returns err from every Read.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// decodeStream reads the rest of a reply with encoding/json, text holding
// what the chunks before gave.
func (o *Ollama) decodeStream(ctx context.Context, body io.Reader, text *strings.Builder) (Response, error) {
	dec := json.NewDecoder(body)
	for {
		var c ollamaChunk
		if err := dec.Decode(&c); err != nil {
			if err == io.EOF {
				return Response{}, &callError{BackendOllama, o.endpoint, o.model, ErrBadResponse,
					errors.New("the reply ended before its final chunk")}
			}
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			if errors.As(err, &se) || errors.As(err, &te) {
				return Response{}, &callError{BackendOllama, o.endpoint, o.model, ErrBadResponse,
					fmt.Errorf("invalid JSON in the reply: %w", err)}
			}
			return Response{}, classifyTransport(ctx, BackendOllama, o.endpoint, o.model, err)
		}
		if r, done, err := o.chunk(c, text); done {
			return r, err
		}
	}
}

// chunk adds one reply chunk to text and reports whether the reply is
// over: with its final chunk, or with an error reported in the middle.
func (o *Ollama) chunk(c ollamaChunk, text *strings.Builder) (Response, bool, error) {
	if c.Error != "" {
		// An error reported in the middle of a reply: the runner failed.
		return Response{}, true, &callError{BackendOllama, o.endpoint, o.model, ErrServer,
			errors.New(truncateBody(c.Error, ""))}
	}
	text.WriteString(c.Response)
	text.WriteString(c.Message.Content)
	if !c.Done {
		return Response{}, false, nil
	}
	return Response{
		Text:             text.String(),
		FinishReason:     c.DoneReason,
		PromptTokens:     c.PromptEvalCount,
		CompletionTokens: c.EvalCount,
	}, true, nil
}

// statusError reads an error reply ({"error": "..."} or plain text).
func (o *Ollama) statusError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := string(raw)
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return &StatusError{
		Backend:    BackendOllama,
		Endpoint:   o.endpoint,
		Model:      o.model,
		StatusCode: resp.StatusCode,
		Body:       truncateBody(msg, ""),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
}
