package llm

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// queueServer is a fake OpenAI-compatible server (/v1/completions,
// /v1/chat/completions) that behaves as a self-hosted one past its
// capacity: it runs at most k requests at once, each for latency (±jitter,
// uniformly), and holds the rest in a FIFO queue instead of answering 429.
// A request not answered within timeout of its arrival gets a 504, as
// from a gateway in front of an overloaded vLLM or Ollama; a request that
// got a slot late keeps it, wasted, until then. It counts what it served
// and timed out, and the most requests it held at once.
type queueServer struct {
	*httptest.Server
	k                int
	latency, timeout time.Duration
	jitter           float64

	mu    sync.Mutex
	busy  int
	queue []*queueWaiter
	held  int // requests received and not yet answered
	peak  int

	served, timedOut atomic.Int64
}

type queueWaiter struct {
	ready   chan struct{}
	granted bool
}

func newQueueServer(k int, latency, timeout time.Duration, jitter float64) *queueServer {
	s := &queueServer{k: k, latency: latency, timeout: timeout, jitter: jitter}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	return s
}

// maxHeld returns the most requests the server held at once.
func (s *queueServer) maxHeld() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

func (s *queueServer) handle(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
	}
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &req)
	deadline := time.NewTimer(s.timeout)
	defer deadline.Stop()

	s.mu.Lock()
	s.held++
	s.peak = max(s.peak, s.held)
	var wt *queueWaiter
	if s.busy < s.k && len(s.queue) == 0 {
		s.busy++
	} else {
		wt = &queueWaiter{ready: make(chan struct{})}
		s.queue = append(s.queue, wt)
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.held--
		s.mu.Unlock()
	}()

	if wt != nil {
		select {
		case <-wt.ready:
		case <-deadline.C:
			if !s.leave(wt) {
				s.release()
			}
			s.timedOut.Add(1)
			http.Error(w, `{"error":{"message":"timed out in the queue"}}`, http.StatusGatewayTimeout)
			return
		case <-r.Context().Done():
			if !s.leave(wt) {
				s.release()
			}
			return
		}
	}
	d := time.Duration(float64(s.latency) * (1 + s.jitter*(2*rand.Float64()-1)))
	work := time.NewTimer(d)
	defer work.Stop()
	select {
	case <-work.C:
	case <-deadline.C:
		s.release()
		s.timedOut.Add(1)
		http.Error(w, `{"error":{"message":"timed out"}}`, http.StatusGatewayTimeout)
		return
	case <-r.Context().Done():
		s.release()
		return
	}
	s.release()
	s.served.Add(1)
	w.Header().Set("Content-Type", "application/json")
	choice := map[string]any{"index": 0, "finish_reason": "stop", "text": "ok"}
	if strings.HasSuffix(r.URL.Path, "/chat/completions") {
		choice = map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]string{"role": "assistant", "content": "ok"}}
	}
	json.NewEncoder(w).Encode(map[string]any{
		"id": "q", "object": "text_completion", "model": req.Model, "choices": []any{choice},
		"usage": map[string]int{"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
	})
}

// leave takes a waiter out of the queue; it reports false if the waiter
// was granted a slot first (which the caller must then release).
func (s *queueServer) leave(wt *queueWaiter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if wt.granted {
		return false
	}
	for i, x := range s.queue {
		if x == wt {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			break
		}
	}
	return true
}

// release frees a slot, handing it to the first waiter.
func (s *queueServer) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		wt := s.queue[0]
		s.queue = s.queue[1:]
		wt.granted = true
		close(wt.ready)
		return
	}
	s.busy--
}
