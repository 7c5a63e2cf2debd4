package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/pipeline/pipelinetest"
	"github.com/ensinstruct/ensinstruct/seeds"
)

func testSeeds() []seeds.Task { return pipelinetest.Seeds() }

// fakeReply adapts pipelinetest.Reply to the Executor's arguments.
func fakeReply(model string, req llm.Request, _ int) string {
	r := pipelinetest.Request{Model: model, Prompt: req.Prompt, Temperature: req.Temperature, Seed: req.Seed}
	if req.Messages != nil {
		r.Messages = []string{}
		for _, m := range req.Messages {
			r.Messages = append(r.Messages, m.Content)
		}
	}
	return pipelinetest.Reply(r)
}

// fakeExec is an in-process Executor around fakeReply, with random
// latencies (so that calls complete out of order), call counting and
// injectable failures.
type fakeExec struct {
	jitter time.Duration
	rng    *rand.Rand
	mu     sync.Mutex
	calls  atomic.Int64
	failAt int64 // fail the failAt-th call (1-based); 0 = never
	reply  func(model string, req llm.Request, sample int) string
}

var errFake = errors.New("fake backend exploded")

func newFakeExec(jitterSeed uint64, jitter time.Duration) *fakeExec {
	return &fakeExec{jitter: jitter, rng: rand.New(rand.NewPCG(jitterSeed, 1)), reply: fakeReply}
}

func (f *fakeExec) Do(ctx context.Context, model string, req llm.Request, sample int) (llm.Response, error) {
	n := f.calls.Add(1)
	if f.failAt > 0 && n == f.failAt {
		return llm.Response{}, fmt.Errorf("model %s: %w", model, errFake)
	}
	if f.jitter > 0 {
		f.mu.Lock()
		d := time.Duration(f.rng.Int64N(int64(f.jitter)))
		f.mu.Unlock()
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return llm.Response{}, ctx.Err()
		}
	}
	return llm.Response{Text: f.reply(model, req, sample), FinishReason: "stop"}, nil
}

func testModels() []llm.ModelInfo {
	return []llm.ModelInfo{
		{Name: "gen", Roles: []llm.Role{llm.RoleInstructions, llm.RoleInstances}, Style: llm.StyleCompletion},
		{Name: "e1", Roles: []llm.Role{llm.RoleEnsemble}, Style: llm.StyleCompletion},
		{Name: "e2", Roles: []llm.Role{llm.RoleEnsemble}, Style: llm.StyleChat},
	}
}
func ptr[T any](v T) *T { return &v }
