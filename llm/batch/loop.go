package batch

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// loop is the executor's scheduler: it submits queues by the flush rule,
// polls live jobs, and detaches. It runs until ctx is cancelled; every
// goroutine it starts is in e.wg.
func (e *Executor) loop(ctx context.Context) {
	tick := min(e.set.Settle, e.set.PollInterval, e.set.FlushIdle) / 4
	tick = min(max(tick, time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		e.step(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-e.kick:
		case <-t.C:
		}
	}
}

// step makes the scheduling decisions due at now.
func (e *Executor) step(ctx context.Context, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	blocked := e.blocked(now)
	keys := make([]string, 0, len(e.queues))
	for k := range e.queues {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a stable order of submissions
	for _, k := range keys {
		q := e.queues[k]
		if q.n == 0 {
			q.calls = q.calls[:0]
			continue
		}
		if q.n >= e.set.FlushSize || now.Sub(q.since) >= e.set.FlushIdle || blocked {
			e.flush(ctx, q)
		}
	}
	for _, j := range e.jobs {
		if j.over || j.busy || j.batchID == "" || now.Before(j.nextPoll) || j.model == nil {
			continue
		}
		j.busy = true
		e.wg.Go(func() { e.poll(ctx, j) })
	}
	if e.detach && e.waiting > 0 && e.submitting == 0 && e.collecting == 0 && blocked && e.queued() == 0 && e.allPolled() {
		e.detachOnce.Do(func() {
			e.log.Info("every remaining call is in a live batch job; detaching", "jobs", e.liveJobs())
			close(e.detached)
		})
	}
}

// blocked reports whether the run is waiting on the executor's jobs and
// queues alone: no local call in flight, no results being read, and no
// progress for Settle. e.mu is held.
func (e *Executor) blocked(now time.Time) bool {
	return e.localBusy == 0 && e.collecting == 0 && now.Sub(e.activity) >= e.set.Settle
}

// queued counts the calls waiting for a job. e.mu is held.
func (e *Executor) queued() int {
	n := 0
	for _, q := range e.queues {
		n += q.n
	}
	return n
}

// allPolled reports whether this process has read the status of every
// job that may be live. e.mu is held.
func (e *Executor) allPolled() bool {
	for _, j := range e.jobs {
		if !j.over && j.batchID != "" && !j.polled {
			return false
		}
	}
	return true
}

// liveJobs counts the jobs that may be live. e.mu is held.
func (e *Executor) liveJobs() int {
	n := 0
	for _, j := range e.jobs {
		if !j.over {
			n++
		}
	}
	return n
}

// flush takes a queue's calls into new jobs, split by the file limits,
// and starts their submissions. e.mu is held.
func (e *Executor) flush(ctx context.Context, q *queue) {
	var chunk []*call
	size := int64(0)
	start := func() {
		if len(chunk) == 0 {
			return
		}
		j := e.newJob(q.model, q.url, chunk)
		calls := chunk
		chunk, size = nil, 0
		e.submitting++
		e.wg.Go(func() { e.submit(ctx, j, calls) })
	}
	for _, c := range q.calls {
		if c.dropped {
			continue
		}
		if int64(len(c.line)) > e.set.MaxFileBytes {
			e.fail(c, errLineTooLarge(c, e.set.MaxFileBytes))
			continue
		}
		if len(chunk) == e.set.MaxFileRequests || size+int64(len(c.line)) > e.set.MaxFileBytes {
			start()
		}
		chunk = append(chunk, c)
		size += int64(len(c.line))
	}
	start()
	q.calls, q.n = q.calls[:0], 0
}

// newJob records a job for calls in memory: from here on no other job
// takes them. e.mu is held.
func (e *Executor) newJob(m *model, url string, calls []*call) *job {
	e.nextLocal++
	j := &job{
		local: localName(e.nextLocal), model: m, name: m.info.Name, url: url,
		created: time.Now().UTC(), status: statusUploading,
	}
	for _, c := range calls {
		j.keys = append(j.keys, c.key)
		c.job = j
		e.live[c.key] = j
	}
	e.jobs = append(e.jobs, j)
	return j
}

func localName(n int) string { return fmt.Sprintf("b%06d", n) }
