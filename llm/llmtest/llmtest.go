// Package llmtest provides a fake model server for tests: an httptest
// server that speaks Ollama's native API (/api/generate, /api/chat) and the
// OpenAI-compatible API (/v1/completions, /v1/chat/completions), answers
// with a function the test gives, after a fixed latency, and counts what it
// served. It is for what a real server cannot be made to do on demand:
// exact replies, exact latencies, call counting.
package llmtest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Call is one request as the server received it, in backend-neutral form.
type Call struct {
	Model       string
	Prompt      string    // completion requests
	Messages    []Message // chat requests
	Temperature float64
	MaxTokens   int
	Seed        *int64
	Stop        []string
}

// Message is one chat message of a Call.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Text returns the prompt, or the chat messages' contents joined by
// newlines.
func (c Call) Text() string {
	if c.Messages == nil {
		return c.Prompt
	}
	parts := make([]string, len(c.Messages))
	for i, m := range c.Messages {
		parts[i] = m.Content
	}
	return strings.Join(parts, "\n")
}

// Server is a fake model server. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server

	reply    func(Call) string
	latency  atomic.Int64 // nanoseconds
	recorder atomic.Pointer[func(path string, body []byte)]

	inFlight    atomic.Int64
	maxInFlight atomic.Int64
	served      atomic.Int64

	idle   sync.Cond // signalled when active drops to zero; L is &mu
	active int       // handlers running, under mu

	mu        sync.Mutex
	count     map[string]int // request digest → replies completed
	log       []Served
	header    http.Header // the last request's headers
	missing   map[string]bool
	installed []string // what /api/tags lists
	pullFail  string   // the error /api/pull reports, if any
}

// LastHeader returns the headers of the last request received.
func (s *Server) LastHeader() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.header.Clone()
}

// Served is one completed reply: a digest of the request body and when the
// reply was written.
type Served struct {
	Digest string
	At     time.Time
}

// NewServer starts a fake server answering with reply, which must be safe
// for concurrent use. Close it when done.
func NewServer(reply func(Call) string) *Server {
	s := &Server{reply: reply, count: map[string]int{}}
	s.idle.L = &s.mu
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/generate", s.ollama)
	mux.HandleFunc("POST /api/chat", s.ollama)
	mux.HandleFunc("POST /v1/completions", s.openai)
	mux.HandleFunc("POST /v1/chat/completions", s.openai)
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"version":"0.0.0-llmtest"}`))
	})
	mux.HandleFunc("POST /api/show", s.show)
	mux.HandleFunc("GET /api/tags", s.tags)
	mux.HandleFunc("POST /api/pull", s.pull)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.active++
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			if s.active--; s.active == 0 {
				s.idle.Broadcast()
			}
			s.mu.Unlock()
		}()
		mux.ServeHTTP(w, r)
	}))
	return s
}

// WaitIdle waits until no handler is running. After a client process has
// died, it makes Log final for that process: a reply whose handler was
// still waiting out its latency is logged (or dropped) before WaitIdle
// returns.
func (s *Server) WaitIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.active > 0 {
		s.idle.Wait()
	}
}

// SetMissing makes the server answer every request for the named models
// as Ollama does for a model it does not have: 404, "model not found".
func (s *Server) SetMissing(models ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.missing = map[string]bool{}
	for _, m := range models {
		s.missing[m] = true
	}
}

func (s *Server) isMissing(model string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.missing[model]
}

// SetInstalled sets the models /api/tags lists (none by default): base
// models of family "llmtest" whose sizes grow with their position.
func (s *Server) SetInstalled(models ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installed = append([]string(nil), models...)
}

// SetPullFailure makes /api/pull fail with msg after its first status
// line ("" for success).
func (s *Server) SetPullFailure(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pullFail = msg
}

func (s *Server) tags(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var models []map[string]any
	for i, name := range s.installed {
		models = append(models, map[string]any{"name": name, "model": name, "digest": "llmtest-" + name,
			"size": 1000 + i, "details": map[string]any{"family": "llmtest", "parameter_size": "1K"}})
	}
	json.NewEncoder(w).Encode(map[string]any{"models": models})
}

// pull streams Ollama's pull progress for the requested model and then
// lists it as installed, or fails as SetPullFailure says.
func (s *Server) pull(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	s.mu.Lock()
	fail := s.pullFail
	s.mu.Unlock()
	enc := json.NewEncoder(w)
	enc.Encode(map[string]any{"status": "pulling manifest"})
	if fail != "" {
		enc.Encode(map[string]any{"error": fail})
		return
	}
	for _, done := range []int{0, 512, 1024} {
		enc.Encode(map[string]any{"status": "pulling layer", "digest": "sha256:llmtest", "total": 1024, "completed": done})
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	enc.Encode(map[string]any{"status": "success"})
	s.mu.Lock()
	s.installed = append(s.installed, req.Model)
	s.mu.Unlock()
}

// show answers Ollama's /api/show: every model exists, with a plain
// completion template, unless SetMissing says otherwise.
func (s *Server) show(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
		Name  string `json:"name"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	name := req.Model
	if name == "" {
		name = req.Name
	}
	w.Header().Set("Content-Type", "application/json")
	if s.isMissing(name) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":"model '%s' not found"}`, name)
		return
	}
	w.Write([]byte(`{"template":"{{ .Prompt }}","details":{"family":"llmtest"},"model_info":{}}`))
}

// SetLatency makes every reply take d (default 0).
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(d)) }

// SetRecorder has the server call record with the path and body of every
// model request it receives from then on, before it waits out the
// latency; nil stops it. record must be safe for concurrent use.
func (s *Server) SetRecorder(record func(path string, body []byte)) {
	if record == nil {
		s.recorder.Store(nil)
		return
	}
	s.recorder.Store(&record)
}

// Served returns the number of replies completed.
func (s *Server) Served() int64 { return s.served.Load() }

// InFlight returns the number of requests being handled now.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// MaxInFlight returns the highest number of requests handled at once.
func (s *Server) MaxInFlight() int64 { return s.maxInFlight.Load() }

// Log returns every completed reply, in the order they completed.
func (s *Server) Log() []Served {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Served(nil), s.log...)
}

// Counts returns how many times each distinct request (by a digest of its
// body) was answered.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.count))
	for k, v := range s.count {
		out[k] = v
	}
	return out
}

// begin tracks a request in flight and waits out the latency. It reports
// false if the client went away first.
func (s *Server) begin(r *http.Request) bool {
	n := s.inFlight.Add(1)
	for {
		m := s.maxInFlight.Load()
		if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	d := time.Duration(s.latency.Load())
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *Server) finish(digest string) {
	s.inFlight.Add(-1)
	s.served.Add(1)
	s.mu.Lock()
	s.count[digest]++
	s.log = append(s.log, Served{digest, time.Now()})
	s.mu.Unlock()
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func (s *Server) ollama(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string         `json:"model"`
		Prompt   string         `json:"prompt"`
		Messages []Message      `json:"messages"`
		Options  map[string]any `json:"options"`
	}
	body, ok := s.readJSON(w, r, &req)
	if !ok {
		return
	}
	if s.isMissing(req.Model) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":"model '%s' not found, try pulling it first"}`, req.Model)
		return
	}
	c := Call{Model: req.Model, Prompt: req.Prompt, Messages: req.Messages}
	if v, ok := req.Options["temperature"].(float64); ok {
		c.Temperature = v
	}
	if v, ok := req.Options["num_predict"].(float64); ok {
		c.MaxTokens = int(v)
	}
	if v, ok := req.Options["seed"].(float64); ok {
		seed := int64(v)
		c.Seed = &seed
	}
	if v, ok := req.Options["stop"].([]any); ok {
		for _, x := range v {
			if s, ok := x.(string); ok {
				c.Stop = append(c.Stop, s)
			}
		}
	}
	if !s.begin(r) {
		s.inFlight.Add(-1)
		return
	}
	text := s.reply(c)
	resp := map[string]any{
		"model": req.Model, "created_at": time.Now().UTC().Format(time.RFC3339Nano),
		"done": true, "done_reason": "stop",
		"prompt_eval_count": len(c.Text()) / 4, "eval_count": len(text)/4 + 1,
	}
	if strings.HasSuffix(r.URL.Path, "/chat") {
		resp["message"] = Message{Role: "assistant", Content: text}
	} else {
		resp["response"] = text
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	s.finish(digest(body))
}

func (s *Server) openai(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model       string    `json:"model"`
		Prompt      any       `json:"prompt"`
		Messages    []Message `json:"messages"`
		Temperature float64   `json:"temperature"`
		MaxTokens   int       `json:"max_tokens"`
		Seed        *int64    `json:"seed"`
		Stop        []string  `json:"stop"`
	}
	body, ok := s.readJSON(w, r, &req)
	if !ok {
		return
	}
	c := Call{Model: req.Model, Messages: req.Messages, Temperature: req.Temperature,
		MaxTokens: req.MaxTokens, Seed: req.Seed, Stop: req.Stop}
	if p, ok := req.Prompt.(string); ok {
		c.Prompt = p
	}
	if c.Temperature < 1e-3 {
		c.Temperature = 0 // clients send greedy as a tiny positive value
	}
	if !s.begin(r) {
		s.inFlight.Add(-1)
		return
	}
	text := s.reply(c)
	usage := map[string]int{"prompt_tokens": len(c.Text()) / 4, "completion_tokens": len(text)/4 + 1}
	usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
	var choice map[string]any
	object := "text_completion"
	if strings.HasSuffix(r.URL.Path, "/chat/completions") {
		object = "chat.completion"
		choice = map[string]any{"index": 0, "finish_reason": "stop", "message": Message{Role: "assistant", Content: text}}
	} else {
		choice = map[string]any{"index": 0, "finish_reason": "stop", "text": text}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"id": "llmtest", "object": object, "created": time.Now().Unix(), "model": req.Model,
		"choices": []any{choice}, "usage": usage,
	})
	s.finish(digest(body))
}

func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, v any) ([]byte, bool) {
	s.mu.Lock()
	s.header = r.Header.Clone()
	s.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	if rec := s.recorder.Load(); rec != nil && err == nil {
		(*rec)(r.URL.Path, body)
	}
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		http.Error(w, `{"error":"invalid JSON"}`, http.StatusBadRequest)
		return nil, false
	}
	return body, true
}
