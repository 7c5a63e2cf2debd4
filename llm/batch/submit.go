package batch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
)

// submit makes a job of calls: intent, upload, file, create, batch, each
// step journaled before the next begins. A job that could not be created
// fails its calls; one cut short by Close is left to the next run, which
// finds out from the journal how far it got.
func (e *Executor) submit(ctx context.Context, j *job, calls []*call) {
	obj, err := e.create(ctx, j, calls)
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.wake()
	e.submitting--
	e.activity = time.Now()
	switch {
	case err == nil:
		j.batchID, j.status, j.counts = obj.ID, obj.Status, obj.RequestCounts
		j.polled = true
		j.nextPoll = time.Now().Add(e.set.PollInterval)
		for _, c := range calls {
			c.attempts++
			e.meter.Attempt(c.model.info.Name, c.attempts > 1)
		}
		e.log.Info("batch job created", "model", j.name, "batch", obj.ID, "local", j.local, "requests", len(calls))
	case ctx.Err() != nil:
		// Closing: the journal says what the next run has to look at.
	default:
		j.status, j.over = statusAbandoned, true
		for _, c := range calls {
			if e.live[c.key] == j {
				delete(e.live, c.key)
			}
			c.job = nil
			e.fail(c, err)
		}
	}
}

// create runs the steps of a submission and returns the created job.
func (e *Executor) create(ctx context.Context, j *job, calls []*call) (batchObject, error) {
	m := j.model
	if err := e.journal.append(entry{Op: opIntent, Local: j.local, At: j.created, Model: j.name,
		BackendModel: m.info.Model, Endpoint: m.info.Endpoint, URL: j.url, Keys: j.keys}); err != nil {
		return batchObject{}, err
	}
	size := 0
	for _, c := range calls {
		size += len(c.line)
	}
	data := make([]byte, 0, size)
	for _, c := range calls {
		data = append(data, c.line...)
	}
	name := fmt.Sprintf("ensinstruct-%s-%s.jsonl", e.prefix, j.local)
	var file fileObject
	err := e.withRetry(ctx, "uploading "+name, func() (err error) {
		file, err = m.api.upload(ctx, name, data)
		return err
	})
	if err != nil {
		return batchObject{}, e.abandon(ctx, j, fmt.Errorf("batch job %s: uploading its input file: %w", j.local, err))
	}
	if err := e.journal.append(entry{Op: opFile, Local: j.local, FileID: file.ID}); err != nil {
		return batchObject{}, err
	}
	e.mu.Lock()
	j.fileID = file.ID
	e.mu.Unlock()
	meta := map[string]string{"ensinstruct_run": e.prefix, "ensinstruct_job": j.local}
	var obj batchObject
	tried := false
	err = e.withRetry(ctx, "creating the batch job of "+file.ID, func() error {
		if tried {
			// The last attempt may have created the job before it
			// failed: never create a second one on the same file.
			b, found, err := m.api.find(ctx, file.ID, j.created.Add(-time.Hour))
			if err != nil {
				return err
			}
			if found {
				obj = b
				return nil
			}
		}
		tried = true
		var err error
		obj, err = m.api.create(ctx, file.ID, j.url, meta)
		return err
	})
	if err != nil && ctx.Err() == nil {
		if b, found, ferr := m.api.find(ctx, file.ID, j.created.Add(-time.Hour)); ferr == nil && found {
			obj, err = b, nil
		} else if ferr != nil {
			// Whether the job exists is unknown: leave it to the next
			// run, which looks it up before doing anything else.
			return batchObject{}, fmt.Errorf("batch job %s: creating it: %w (and looking it up: %v)", j.local, err, ferr)
		}
	}
	if err != nil {
		return batchObject{}, e.abandon(ctx, j, fmt.Errorf("batch job %s: creating it: %w", j.local, err))
	}
	if err := e.journal.append(entry{Op: opBatch, Local: j.local, BatchID: obj.ID}); err != nil {
		return batchObject{}, err
	}
	return obj, nil
}

// abandon journals that j was never created and returns err.
func (e *Executor) abandon(ctx context.Context, j *job, err error) error {
	if ctx.Err() != nil {
		return err
	}
	if jerr := e.journal.append(entry{Op: opAbandon, Local: j.local, Reason: err.Error()}); jerr != nil {
		return errors.Join(err, jerr)
	}
	return err
}

// withRetry runs f until it succeeds, fails for good or the retry
// policy's attempts are spent, backing off between attempts.
func (e *Executor) withRetry(ctx context.Context, what string, f func() error) error {
	wait := e.retry.InitialBackoff
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !retryable(err) || attempt >= e.retry.MaxAttempts || ctx.Err() != nil {
			return err
		}
		var se *llm.StatusError
		d := wait
		if errors.As(err, &se) && se.RetryAfter > d {
			d = se.RetryAfter
		}
		e.log.Warn("batch API request failed; retrying", "what", what, "attempt", attempt, "wait", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		wait = min(wait*2, e.retry.MaxBackoff)
	}
}

// fail ends call c with err. e.mu is held.
func (e *Executor) fail(c *call, err error) {
	if e.calls[c.key] == c {
		delete(e.calls, c.key)
	}
	if c.dropped {
		return
	}
	c.dropped = true
	e.meter.Failure(c.model.info.Name)
	c.err = fmt.Errorf("model %q: %w", c.model.info.Name, err)
	close(c.done)
}

func errLineTooLarge(c *call, limit int64) error {
	return fmt.Errorf("%w: the request is %d bytes, more than a batch input file may hold (%d)", llm.ErrBadRequest, len(c.line), limit)
}

// recover rebuilds the jobs from the journal and settles the ones a
// crash left half made: a job with a batch ID is live until polled; one
// whose file was uploaded is looked up by that file (created: live; not:
// abandoned); one with no file was never created.
func (e *Executor) recover(ctx context.Context, entries []entry) error {
	byLocal := map[string]*job{}
	for _, en := range entries {
		j := byLocal[en.Local]
		if en.Op == opIntent {
			j = &job{local: en.Local, name: en.Model, url: en.URL, keys: en.Keys, created: en.At, status: statusUploading}
			j.model = e.modelFor(en)
			byLocal[en.Local] = j
			e.jobs = append(e.jobs, j)
			e.nextLocal++
			continue
		}
		if j == nil {
			continue // an entry of a job whose intent was torn off
		}
		switch en.Op {
		case opFile:
			j.fileID = en.FileID
		case opBatch:
			j.batchID, j.status = en.BatchID, "submitted"
		case opDone:
			j.over, j.status = true, en.Status
			j.counts = requestCounts{Total: len(j.keys), Completed: en.Completed, Failed: en.Failed}
			j.cost = en.CostUSD
		case opAbandon:
			j.over, j.status = true, statusAbandoned
		}
	}
	for _, j := range e.jobs {
		if j.over {
			continue
		}
		if j.fileID == "" {
			// The file was never recorded, so the job was never created.
			if err := e.journal.append(entry{Op: opAbandon, Local: j.local, Reason: "never uploaded"}); err != nil {
				return err
			}
			j.over, j.status = true, statusAbandoned
			continue
		}
		if j.model == nil || j.model.api == nil {
			why := "no model of the configuration serves it"
			if j.model != nil {
				why = j.model.err.Error()
			}
			return fmt.Errorf("batch job %s (model %s, file %s) of %s may be live, but %s: restore the model, or delete %s only if the job is known to be over",
				j.local, j.name, j.fileID, e.journal.path, why, e.journal.path)
		}
		if j.batchID == "" {
			b, found, err := j.model.api.find(ctx, j.fileID, j.created.Add(-time.Hour))
			if err != nil {
				return fmt.Errorf("batch job %s: looking up the job of file %s: %w", j.local, j.fileID, err)
			}
			if !found {
				if err := e.journal.append(entry{Op: opAbandon, Local: j.local, Reason: "never created"}); err != nil {
					return err
				}
				j.over, j.status = true, statusAbandoned
				continue
			}
			if err := e.journal.append(entry{Op: opBatch, Local: j.local, BatchID: b.ID}); err != nil {
				return err
			}
			j.batchID, j.status, j.counts = b.ID, b.Status, b.RequestCounts
			e.log.Info("re-attached to a batch job created before the last run ended", "batch", b.ID, "local", j.local)
		}
		for _, k := range j.keys {
			e.live[k] = j
		}
	}
	return nil
}

// modelFor finds the model a journaled job belongs to: the one of its
// pool name if it still has the server and model name, else any with
// them (the cache keys do not depend on the pool's names).
func (e *Executor) modelFor(en entry) *model {
	if m := e.models[en.Model]; m != nil && m.info.Model == en.BackendModel && m.info.Endpoint == en.Endpoint {
		return m
	}
	for _, m := range e.models {
		if m.info.Model == en.BackendModel && m.info.Endpoint == en.Endpoint {
			return m
		}
	}
	return nil
}
