package batchtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
)

// parse reads the lines of an input file; a problem fails the job at
// validation, as the API does.
func (s *Server) parse(j *job, data []byte) {
	seen := map[string]bool{}
	bad := func(n int, code, msg string) {
		line := n
		j.errors = append(j.errors, errEntry{Code: code, Message: msg, Line: &line})
	}
	if int64(len(data)) > s.opts.MaxBytes {
		j.errors = append(j.errors, errEntry{Code: "file_too_large", Message: fmt.Sprintf("%d bytes, more than %d", len(data), s.opts.MaxBytes)})
	}
	for n, raw := range bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n")) {
		var l inputLine
		if err := json.Unmarshal(raw, &l); err != nil {
			bad(n+1, "invalid_json_line", err.Error())
			continue
		}
		var body map[string]any
		switch {
		case l.CustomID == "":
			bad(n+1, "missing_custom_id", "custom_id is required")
		case seen[l.CustomID]:
			bad(n+1, "duplicate_custom_id", "custom_id "+l.CustomID+" is used twice")
		case l.Method != "POST":
			bad(n+1, "invalid_method", "method must be POST")
		case l.URL != j.Endpoint:
			bad(n+1, "mismatched_url", fmt.Sprintf("url %q differs from the job's endpoint %q", l.URL, j.Endpoint))
		case json.Unmarshal(l.Body, &body) != nil || body["model"] == nil:
			bad(n+1, "invalid_body", "body must be a JSON object naming a model")
		}
		seen[l.CustomID] = true
		j.lines = append(j.lines, l)
	}
	if len(j.lines) > s.opts.MaxRequests {
		j.errors = append(j.errors, errEntry{Code: "too_many_requests", Message: fmt.Sprintf("%d requests, more than %d", len(j.lines), s.opts.MaxRequests)})
	}
	j.counts.Total = len(j.lines)
}

func terminal(status string) bool {
	switch status {
	case "completed", "failed", "expired", "cancelled":
		return true
	}
	return false
}

// advance moves a job one step on. s.mu is held.
func (s *Server) advance(j *job) {
	switch j.Status {
	case "validating":
		if len(j.errors) > 0 {
			j.Status = "failed"
			return
		}
		j.Status = "in_progress"
		if len(s.expireAfter) > 0 {
			j.stopAfter, j.stopAs, s.expireAfter = s.expireAfter[0], "expired", s.expireAfter[1:]
		} else if len(s.cancelAfter) > 0 {
			j.stopAfter, j.stopAs, s.cancelAfter = s.cancelAfter[0], "cancelling", s.cancelAfter[1:]
		}
	case "in_progress":
		n := len(j.lines)
		if j.stopAfter >= 0 {
			n = min(n, j.stopAfter)
		}
		for j.done < n {
			s.run(j, j.lines[j.done])
			j.done++
		}
		switch {
		case j.stopAs == "expired":
			s.finish(j, "batch_expired", "This request could not be executed before the completion window expired.")
			j.Status = "expired"
		case j.stopAs == "cancelling":
			j.Status = "cancelling"
		default:
			j.Status = "finalizing"
		}
	case "finalizing":
		s.finish(j, "", "")
		j.Status = "completed"
	case "cancelling":
		s.finish(j, "batch_cancelled", "This request was not executed because the batch was cancelled.")
		j.Status = "cancelled"
	}
}

// run answers one request through the synchronous handler. s.mu is held.
func (s *Server) run(j *job, l inputLine) {
	n := s.ran[l.CustomID]
	s.ran[l.CustomID]++
	reqID := s.nextID("req")
	line := map[string]any{"id": s.nextID("batch_req"), "custom_id": l.CustomID, "error": nil}
	if s.lineStatus != nil {
		if st := s.lineStatus(l.CustomID, n); st != 0 && st != 200 {
			line["response"] = map[string]any{"status_code": st, "request_id": reqID,
				"body": map[string]any{"error": map[string]any{"message": "injected failure", "type": "server_error", "code": nil}}}
			s.appendLine(&j.errs, line)
			j.counts.Failed++
			return
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, l.URL, bytes.NewReader(l.Body))
	req.Header.Set("Content-Type", "application/json")
	s.sync.ServeHTTP(rec, req)
	body := json.RawMessage(bytes.TrimSpace(rec.Body.Bytes()))
	if !json.Valid(body) {
		body, _ = json.Marshal(map[string]any{"error": map[string]any{"message": string(body)}})
	}
	line["response"] = map[string]any{"status_code": rec.Code, "request_id": reqID, "body": body}
	if rec.Code == 200 {
		s.appendLine(&j.output, line)
		j.counts.Completed++
		s.succeeded[l.CustomID] = true
	} else {
		s.appendLine(&j.errs, line)
		j.counts.Failed++
	}
}

func (s *Server) appendLine(to *[]string, line map[string]any) {
	b, _ := json.Marshal(line)
	*to = append(*to, string(b))
}

// finish writes the job's files, the requests not run getting code.
// s.mu is held.
func (s *Server) finish(j *job, code, msg string) {
	if code != "" {
		for _, l := range j.lines[j.done:] {
			s.appendLine(&j.errs, map[string]any{"id": s.nextID("batch_req"), "custom_id": l.CustomID, "response": nil,
				"error": map[string]any{"code": code, "message": msg}})
			j.counts.Failed++
		}
		j.done = len(j.lines)
	}
	if len(j.output) > 0 {
		j.outputFile = s.nextID("file")
		s.files[j.outputFile] = []byte(strings.Join(j.output, "\n") + "\n")
	}
	if len(j.errs) > 0 {
		j.errorFile = s.nextID("file")
		s.files[j.errorFile] = []byte(strings.Join(j.errs, "\n") + "\n")
	}
}

// object is the API's batch object of j. s.mu is held.
func (s *Server) object(j *job) map[string]any {
	o := map[string]any{
		"id": j.ID, "object": "batch", "endpoint": j.Endpoint, "input_file_id": j.InputFileID,
		"completion_window": "24h", "status": j.Status, "created_at": j.Created.Unix(),
		"output_file_id": nil, "error_file_id": nil, "errors": nil, "request_counts": j.counts,
	}
	if j.outputFile != "" {
		o["output_file_id"] = j.outputFile
	}
	if j.errorFile != "" {
		o["error_file_id"] = j.errorFile
	}
	if j.Status == "failed" {
		o["errors"] = map[string]any{"object": "list", "data": j.errors}
	}
	return o
}
