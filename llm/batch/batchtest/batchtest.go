// Package batchtest provides a fake OpenAI-compatible server with the
// Files and Batches APIs, for tests of the batch executor: an httptest
// server that validates every input line the way the documented API does
// (unique custom_id, method, url, body), moves jobs through validating,
// in_progress, finalizing and completed, writes output and error files in
// the documented line format, and can expire or cancel a job, fail some
// of its requests, fail uploads, and stop at the moments a test needs to
// kill a client (mid-upload, right after a job was created). It counts
// every submission of every request, and every request put in a job
// while another live job held it.
//
// Synchronous calls (/v1/chat/completions, /v1/completions, ...) and the
// requests of a job are answered by the same llmtest.Server handler, so
// a reply is the same bytes either way.
package batchtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ensinstruct/ensinstruct/llm/llmtest"
)

// Options configure a Server.
type Options struct {
	// MaxRequests and MaxBytes are the limits of an input file (default:
	// the API's 50,000 requests and 200 MB); a job whose file exceeds
	// them fails validation.
	MaxRequests int
	MaxBytes    int64
	// Key, when set, is the API key every Files and Batches request must
	// carry (Authorization: Bearer KEY); others get a 401 that echoes
	// the header they sent, as some proxies do.
	Key string
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	sync http.Handler
	opts Options

	mu        sync.Mutex
	seq       int
	files     map[string][]byte
	jobs      map[string]*job
	order     []string // job IDs, oldest first
	submitted map[string]int
	ran       map[string]int
	overlaps  []string
	uploads   int
	creates   int
	polls     int
	hold      bool

	failUploads  []int
	failContent  []int
	blockUploads bool
	blockCreates bool
	blocked      chan string // "upload" or "create", when a request is held
	expireAfter  []int
	cancelAfter  []int
	lineStatus   func(customID string, run int) int
	succeeded    map[string]bool
	repaid       []string
}

// Job is a batch job as the fake holds it.
type Job struct {
	ID, InputFileID, Endpoint, Status string
	CustomIDs                         []string
	Created                           time.Time
}

type job struct {
	Job
	lines        []inputLine
	done         int // lines run
	output, errs []string
	outputFile   string
	errorFile    string
	counts       counts
	errors       []errEntry
	stopAfter    int    // run this many lines, then stop (-1: all)
	stopAs       string // expired or cancelling
}

type inputLine struct {
	CustomID string          `json:"custom_id"`
	Method   string          `json:"method"`
	URL      string          `json:"url"`
	Body     json.RawMessage `json:"body"`
}

type counts struct {
	Total     int `json:"total"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
}

type errEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Line    *int   `json:"line,omitempty"`
}

// NewServer starts the fake; sync answers the synchronous endpoints and
// every request of a job. Close it when done.
func NewServer(sync *llmtest.Server, o Options) *Server {
	if o.MaxRequests == 0 {
		o.MaxRequests = 50_000
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 200_000_000
	}
	s := &Server{sync: sync.Config.Handler, opts: o, files: map[string][]byte{}, jobs: map[string]*job{}, succeeded: map[string]bool{},
		submitted: map[string]int{}, ran: map[string]int{}, blocked: make(chan string, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/files", s.auth(s.upload))
	mux.HandleFunc("GET /v1/files/{id}/content", s.auth(s.content))
	mux.HandleFunc("POST /v1/batches", s.auth(s.create))
	mux.HandleFunc("GET /v1/batches", s.auth(s.list))
	mux.HandleFunc("GET /v1/batches/{id}", s.auth(s.retrieve))
	mux.HandleFunc("POST /v1/batches/{id}/cancel", s.auth(s.cancel))
	mux.Handle("/", s.sync)
	s.Server = httptest.NewServer(mux)
	return s
}

// Hold stops every job where it is; Release lets them go on, one step per
// time a client reads a job.
func (s *Server) Hold() { s.mu.Lock(); s.hold = true; s.mu.Unlock() }

// Release undoes Hold.
func (s *Server) Release() { s.mu.Lock(); s.hold = false; s.mu.Unlock() }

// Finish runs every job that is not over to its end, as if the provider
// had worked through them overnight.
func (s *Server) Finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.order {
		j := s.jobs[id]
		for !terminal(j.Status) {
			s.advance(j)
		}
	}
}

// FailUploads makes the next uploads answer these HTTP statuses, one
// each.
func (s *Server) FailUploads(statuses ...int) {
	s.mu.Lock()
	s.failUploads = append(s.failUploads, statuses...)
	s.mu.Unlock()
}

// FailDownloads makes the next reads of a file's content answer these
// HTTP statuses, one each; a status of -1 sends the first half of the
// file and then breaks the connection.
func (s *Server) FailDownloads(statuses ...int) {
	s.mu.Lock()
	s.failContent = append(s.failContent, statuses...)
	s.mu.Unlock()
}

// BlockUploads makes every later upload store its file and then hang
// without answering until the client goes away; Blocked receives
// "upload" when one does.
func (s *Server) BlockUploads(on bool) { s.mu.Lock(); s.blockUploads = on; s.mu.Unlock() }

// BlockCreates makes every later job creation create the job and then
// hang without answering until the client goes away; Blocked receives
// "create" when one does.
func (s *Server) BlockCreates(on bool) { s.mu.Lock(); s.blockCreates = on; s.mu.Unlock() }

// Blocked receives the kind of request a Block setting holds.
func (s *Server) Blocked() <-chan string { return s.blocked }

// ExpireNext makes the next job to run expire after running n of its
// requests: the rest come back as batch_expired in its error file.
func (s *Server) ExpireNext(n int) {
	s.mu.Lock()
	s.expireAfter = append(s.expireAfter, n)
	s.mu.Unlock()
}

// CancelNext makes the next job to run be cancelled after n of its
// requests, as a user cancelling it would.
func (s *Server) CancelNext(n int) {
	s.mu.Lock()
	s.cancelAfter = append(s.cancelAfter, n)
	s.mu.Unlock()
}

// FailLines decides the HTTP status of each request a job runs, from its
// custom_id and the number of times a job ran it before; 0 and 200 run
// it normally.
func (s *Server) FailLines(f func(customID string, run int) int) {
	s.mu.Lock()
	s.lineStatus = f
	s.mu.Unlock()
}

// Submitted returns, per custom_id, the number of jobs created with it.
func (s *Server) Submitted() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.submitted))
	for k, v := range s.submitted {
		out[k] = v
	}
	return out
}

// Overlaps returns the custom_ids put in a job while a live job held
// them: requests submitted twice, paid twice.
func (s *Server) Overlaps() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.overlaps)
}

// Repaid returns the custom_ids put in a job after an earlier job had
// already answered them.
func (s *Server) Repaid() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.repaid)
}

// Jobs returns the jobs, oldest first.
func (s *Server) Jobs() []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Job, len(s.order))
	for i, id := range s.order {
		j := s.jobs[id].Job
		j.CustomIDs = slices.Clone(j.CustomIDs)
		out[i] = j
	}
	return out
}

// Counts returns the uploads, creations and job reads received.
func (s *Server) Counts() (uploads, creates, polls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uploads, s.creates, s.polls
}

// auth checks the API key, when the server has one.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); s.opts.Key != "" && got != "Bearer "+s.opts.Key {
			apiError(w, http.StatusUnauthorized, "invalid_api_key", "Incorrect API key provided: "+got)
			return
		}
		h(w, r)
	}
}

func (s *Server) nextID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s_%06d", prefix, s.seq)
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "code": code}})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.uploads++
	var fail int
	if len(s.failUploads) > 0 {
		fail, s.failUploads = s.failUploads[0], s.failUploads[1:]
	}
	block := s.blockUploads
	s.mu.Unlock()
	if fail != 0 {
		apiError(w, fail, "upload_failed", "the upload failed (injected)")
		return
	}
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		apiError(w, 400, "invalid_upload", err.Error())
		return
	}
	if p := r.FormValue("purpose"); p != "batch" {
		apiError(w, 400, "invalid_purpose", fmt.Sprintf("purpose %q, want batch", p))
		return
	}
	f, hdr, err := r.FormFile("file")
	if err != nil {
		apiError(w, 400, "invalid_upload", err.Error())
		return
	}
	data, err := io.ReadAll(f)
	if err != nil {
		apiError(w, 400, "invalid_upload", err.Error())
		return
	}
	s.mu.Lock()
	id := s.nextID("file")
	s.files[id] = data
	s.mu.Unlock()
	if block {
		s.blocked <- "upload"
		<-r.Context().Done()
		return
	}
	reply(w, map[string]any{"id": id, "object": "file", "bytes": len(data), "created_at": time.Now().Unix(),
		"filename": hdr.Filename, "purpose": "batch"})
}

func (s *Server) content(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	data, ok := s.files[r.PathValue("id")]
	var fail int
	if ok && len(s.failContent) > 0 {
		fail, s.failContent = s.failContent[0], s.failContent[1:]
	}
	s.mu.Unlock()
	switch {
	case !ok:
		apiError(w, 404, "not_found", "no such file")
		return
	case fail > 0:
		apiError(w, fail, "download_failed", "the download failed (injected)")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if fail < 0 {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data[:len(data)/2])
		panic(http.ErrAbortHandler) // the connection breaks mid-file
	}
	w.Write(data)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		InputFileID      string            `json:"input_file_id"`
		Endpoint         string            `json:"endpoint"`
		CompletionWindow string            `json:"completion_window"`
		Metadata         map[string]string `json:"metadata"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, 400, "invalid_json", err.Error())
		return
	}
	s.mu.Lock()
	s.creates++
	data, ok := s.files[req.InputFileID]
	switch {
	case !ok:
		s.mu.Unlock()
		apiError(w, 400, "invalid_file", "no such input file")
		return
	case req.CompletionWindow != "24h":
		s.mu.Unlock()
		apiError(w, 400, "invalid_completion_window", "completion_window must be 24h")
		return
	case req.Endpoint != "/v1/chat/completions" && req.Endpoint != "/v1/completions":
		s.mu.Unlock()
		apiError(w, 400, "invalid_endpoint", "unsupported endpoint "+req.Endpoint)
		return
	}
	j := &job{Job: Job{ID: s.nextID("batch"), InputFileID: req.InputFileID, Endpoint: req.Endpoint,
		Status: "validating", Created: time.Now()}, stopAfter: -1}
	s.parse(j, data)
	s.jobs[j.ID] = j
	s.order = append(s.order, j.ID)
	for _, l := range j.lines {
		if s.heldByLive(l.CustomID, j) {
			s.overlaps = append(s.overlaps, l.CustomID)
		}
		if s.succeeded[l.CustomID] {
			s.repaid = append(s.repaid, l.CustomID)
		}
		s.submitted[l.CustomID]++
		j.CustomIDs = append(j.CustomIDs, l.CustomID)
	}
	obj := s.object(j)
	block := s.blockCreates
	s.mu.Unlock()
	if block {
		s.blocked <- "create"
		<-r.Context().Done()
		return
	}
	reply(w, obj)
}

// heldByLive reports whether a live job other than j holds id.
func (s *Server) heldByLive(id string, j *job) bool {
	for _, o := range s.jobs {
		if o != j && !terminal(o.Status) && slices.Contains(o.CustomIDs, id) {
			return true
		}
	}
	return false
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	after := r.URL.Query().Get("after")
	s.mu.Lock()
	defer s.mu.Unlock()
	var data []any
	skipping := after != ""
	more := false
	for i := len(s.order) - 1; i >= 0; i-- {
		id := s.order[i]
		if skipping {
			skipping = id != after
			continue
		}
		if len(data) == limit {
			more = true
			break
		}
		data = append(data, s.object(s.jobs[id]))
	}
	page := map[string]any{"object": "list", "data": data, "has_more": more}
	if len(data) > 0 {
		page["first_id"] = data[0].(map[string]any)["id"]
		page["last_id"] = data[len(data)-1].(map[string]any)["id"]
	}
	reply(w, page)
}

func (s *Server) retrieve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls++
	j, ok := s.jobs[r.PathValue("id")]
	if !ok {
		apiError(w, 404, "not_found", "no such batch")
		return
	}
	if !s.hold {
		s.advance(j)
	}
	reply(w, s.object(j))
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[r.PathValue("id")]
	if !ok {
		apiError(w, 404, "not_found", "no such batch")
		return
	}
	if !terminal(j.Status) {
		j.Status = "cancelling"
	}
	reply(w, s.object(j))
}
