package batch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
)

// ErrNotRun is the error of a request that a job did not run: the job
// expired, was cancelled or failed, or its files do not hold the request.
// Such requests are resubmitted under the retry policy.
var ErrNotRun = errors.New("the batch job did not run the request")

// poll reads a job's status, and its results once it is over.
func (e *Executor) poll(ctx context.Context, j *job) {
	obj, err := j.model.api.get(ctx, j.batchID)
	e.mu.Lock()
	if err != nil {
		defer e.mu.Unlock()
		j.busy = false
		j.nextPoll = time.Now().Add(e.set.PollInterval)
		if ctx.Err() != nil {
			return
		}
		j.pollErrs++
		e.log.Warn("reading a batch job failed", "batch", j.batchID, "attempt", j.pollErrs, "err", err)
		if !retryable(err) || j.pollErrs >= e.retry.MaxAttempts {
			// The job stays live in the journal: the next run asks again.
			e.failWaiters(j, fmt.Errorf("batch job %s: reading its status: %w", j.batchID, err))
		}
		return
	}
	j.pollErrs = 0
	j.polled = true
	if obj.Status != j.status {
		e.log.Info("batch job", "batch", j.batchID, "model", j.name, "status", obj.Status,
			"completed", obj.RequestCounts.Completed, "failed", obj.RequestCounts.Failed, "total", obj.RequestCounts.Total)
	}
	j.status, j.counts = obj.Status, obj.RequestCounts
	if !terminal(obj.Status) {
		j.busy = false
		j.nextPoll = time.Now().Add(e.set.PollInterval)
		e.mu.Unlock()
		e.wake()
		return
	}
	e.collecting++
	e.mu.Unlock()
	err = e.collect(ctx, j, obj)
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.wake()
	e.collecting--
	e.activity = time.Now()
	j.busy = false
	if err != nil {
		j.nextPoll = time.Now().Add(e.set.PollInterval)
		if ctx.Err() == nil {
			j.pollErrs++
			e.log.Warn("reading a batch job's results failed", "batch", j.batchID, "attempt", j.pollErrs, "err", err)
			if !retryable(err) || j.pollErrs >= e.retry.MaxAttempts {
				e.failWaiters(j, fmt.Errorf("batch job %s: reading its results: %w", j.batchID, err))
			}
		}
		return
	}
	j.over = true
}

// failWaiters ends the calls that wait for j with err; j stays live, so
// no other job takes them. e.mu is held.
func (e *Executor) failWaiters(j *job, err error) {
	for _, k := range j.keys {
		if c := e.calls[k]; c != nil && c.job == j {
			e.fail(c, err)
		}
	}
}

// storeChunk is the number of results stored in the cache at once.
const storeChunk = 1024

// collect reads the output and error files of a job that is over, stores
// every result in the cache and hands it to its waiters, and resubmits or
// fails the requests that got none; then it journals the job as done.
func (e *Executor) collect(ctx context.Context, j *job, obj batchObject) error {
	started := j.created
	// got survives a collection cut short, so that reading the files
	// again accounts for no result twice.
	if j.got == nil {
		j.got = make(map[string]bool, len(j.keys))
	}
	got := j.got
	inJob := make(map[string]bool, len(j.keys))
	for _, k := range j.keys {
		inJob[k] = true
	}
	// Results are stored a chunk at a time, one commit for each.
	var keys []string
	var resps []llm.Response
	store := func() error {
		if len(keys) == 0 {
			return nil
		}
		if err := e.cache.PutMany(keys, resps); err != nil {
			for _, k := range keys {
				delete(got, k) // the next attempt reads them again
			}
			return err
		}
		for i, k := range keys {
			e.answered(j, k, resps[i])
		}
		keys, resps = keys[:0], resps[:0]
		return nil
	}
	for _, fileID := range []string{obj.OutputFileID, obj.ErrorFileID} {
		if fileID == "" {
			continue
		}
		err := e.readResults(ctx, j, fileID, func(l outputLine) error {
			if !inJob[l.CustomID] || got[l.CustomID] {
				return nil // not ours, or said twice: the first one counts
			}
			got[l.CustomID] = true
			resp, lerr := lineResult(l, j.url)
			if lerr != nil {
				e.lineFailed(j, l.CustomID, lerr)
				return nil
			}
			resp.Latency = time.Since(started)
			keys, resps = append(keys, l.CustomID), append(resps, resp)
			if len(keys) == storeChunk {
				return store()
			}
			return nil
		})
		// The results read before a broken download are good: keep them.
		if serr := store(); err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
	}
	var missing error = fmt.Errorf("%w: job %s ended %s and its files hold no result for it", ErrNotRun, j.batchID, obj.Status)
	if msg := obj.Errors.String(); msg != "" {
		missing = fmt.Errorf("%w: job %s %s: %s", ErrNotRun, j.batchID, obj.Status, msg)
	}
	for _, k := range j.keys {
		if !got[k] {
			e.lineFailed(j, k, missing)
		}
	}
	e.mu.Lock()
	cost := j.cost
	e.mu.Unlock()
	return e.journal.append(entry{Op: opDone, Local: j.local, Status: obj.Status,
		Completed: obj.RequestCounts.Completed, Failed: obj.RequestCounts.Failed, CostUSD: cost})
}

// readResults streams the lines of a result file to f.
func (e *Executor) readResults(ctx context.Context, j *job, fileID string, f func(outputLine) error) error {
	body, err := j.model.api.content(ctx, fileID)
	if err != nil {
		return err
	}
	defer body.Close()
	r := bufio.NewReaderSize(body, 1<<20)
	for n := 1; ; n++ {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 {
			var l outputLine
			if jerr := json.Unmarshal(b, &l); jerr != nil || l.CustomID == "" {
				if len(b) == 1 && b[0] == '\n' {
					continue
				}
				return fmt.Errorf("batch job %s, file %s, line %d: %w: not a result line", j.batchID, fileID, n, llm.ErrBadResponse)
			}
			if ferr := f(l); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("batch job %s, file %s: %w: %v", j.batchID, fileID, llm.ErrBadResponse, err)
		}
	}
}

// lineResult is the response a result line holds, or why it holds none.
func lineResult(l outputLine, url string) (llm.Response, error) {
	switch {
	case l.Error != nil && l.Error.Code != "":
		return llm.Response{}, &lineError{code: l.Error.Code, msg: l.Error.Message}
	case l.Response == nil:
		return llm.Response{}, fmt.Errorf("%w: the result line has neither a response nor an error", ErrNotRun)
	case l.Response.StatusCode != 200:
		return llm.Response{}, &llm.StatusError{Backend: llm.BackendOpenAI, StatusCode: l.Response.StatusCode,
			Body: errorBody(l.Response.Body)}
	}
	return llm.ParseOpenAIReply(url, l.Response.Body)
}

// errRunLocally tells the callers waiting for a request of a model whose
// calls do not go through the Batch API that the job holding it did not
// answer it: they call the model themselves.
var errRunLocally = errors.New("run it on the local pool")

// lineError is a request a job did not run, with the API's code
// (batch_expired, batch_cancelled, ...).
type lineError struct{ code, msg string }

func (e *lineError) Error() string { return e.code + ": " + e.msg }
func (e *lineError) Unwrap() error { return ErrNotRun }

// kind names a failed request for ModelStats.Errors.
func kind(err error) string {
	var le *lineError
	if errors.As(err, &le) {
		return le.code
	}
	if errors.Is(err, ErrNotRun) {
		return "not_run"
	}
	return llm.ErrorKind(err)
}

// answered accounts for a stored result, to the model and the job at
// once, and hands it to the call that waits for it.
func (e *Executor) answered(j *job, key string, resp llm.Response) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.meter.Success(j.name, resp)
	j.cost += (float64(resp.PromptTokens)*j.model.price.PromptPerMillion +
		float64(resp.CompletionTokens)*j.model.price.CompletionPerMillion) / 1e6
	e.activity = time.Now()
	if e.live[key] == j {
		delete(e.live, key)
	}
	c := e.calls[key]
	if c == nil || c.job != j {
		return
	}
	delete(e.calls, key)
	c.resp = resp
	close(c.done)
}

// lineFailed counts a request that got no result and resubmits it, if
// the retry policy allows and someone waits for it, or fails it.
func (e *Executor) lineFailed(j *job, key string, err error) {
	e.meter.AttemptFailed(j.name, kind(err))
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live[key] == j {
		delete(e.live, key)
	}
	c := e.calls[key]
	if c == nil || c.job != j {
		return // nobody asked for it in this run: the next ask queues it
	}
	c.job = nil
	err = fmt.Errorf("batch job %s, request %s: %w", j.batchID, key[:12], err)
	switch {
	case c.waiters == 0:
		delete(e.calls, key)
	case !c.model.info.Batch:
		// A job of an earlier run held it; this run calls the model
		// synchronously.
		delete(e.calls, key)
		c.dropped = true
		c.err = errRunLocally
		close(c.done)
	case (errors.Is(err, ErrNotRun) || llm.Retryable(err)) && c.attempts < e.retry.MaxAttempts:
		e.log.Warn("a request of a batch job failed; resubmitting it", "model", j.name, "attempt", c.attempts, "err", err)
		e.enqueue(c)
	case c.attempts > 1:
		e.fail(c, fmt.Errorf("giving up after %d attempts: %w", c.attempts, err))
	default:
		e.fail(c, err)
	}
}
