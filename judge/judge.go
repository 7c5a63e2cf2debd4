// Package judge grades candidate outputs with a judge model, for the
// consensus rule filter.RuleJudge: it renders prompts.JudgePrompt for every
// usable candidate, sends the requests through an Executor (the pipeline's
// seam for model calls: the local pool, JetStream workers or the Batch
// API), and parses the replies with prompts.ParseJudgeScore. The scores go
// to filter.Votes.Judge.
package judge

import (
	"context"
	"fmt"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/prompts"
	"golang.org/x/sync/errgroup"
)

// Executor runs one model call; *llm.Pool implements it, and so does the
// pipeline's executor.
type Executor interface {
	Do(ctx context.Context, model string, req llm.Request, sample int) (llm.Response, error)
}

// DefaultMaxTokens bounds a judge reply: the rubric asks for one line.
const DefaultMaxTokens = 32

// Judge grades candidates with one model. The zero value is not usable:
// Model must be set. A Judge is a plain value, safe for concurrent use.
type Judge struct {
	// Model is the judge's name in the executor's pool.
	Model string
	// Style is how the prompt is rendered for the model.
	Style prompts.Style
	// MaxTokens bounds each reply; 0 means DefaultMaxTokens.
	MaxTokens int
}

// Request returns the request that grades answer. Judging is greedy
// (temperature 0), so a cached reply is the reply.
func (j Judge) Request(instruction, input, answer string) llm.Request {
	p := prompts.JudgePrompt(j.Style, instruction, input, answer)
	req := llm.Request{Prompt: p.Text, Stop: p.Stop, MaxTokens: j.MaxTokens}
	if req.MaxTokens == 0 {
		req.MaxTokens = DefaultMaxTokens
	}
	for _, m := range p.Messages {
		req.Messages = append(req.Messages, llm.Message{Role: m.Role, Content: m.Content})
	}
	return req
}

// Result is the judge's verdict on one example's candidates.
type Result struct {
	// Scores are aligned with the candidates, on the scale of
	// prompts.JudgeMin..JudgeMax; 0 for a candidate that was not judged
	// (unusable) or whose reply held no readable grade.
	Scores []float64
	// Calls is the number of candidates sent to the judge, Unreadable the
	// replies among them with no readable grade.
	Calls, Unreadable int
}

// Score grades every usable candidate of a measured example (see
// filter.Measure) for instruction and input, calling the judge for all of
// them at once; the executor bounds the concurrency. A failed call fails
// the whole example with its error, wrapped with the candidate's index; a
// reply with no readable grade scores 0 and is counted in Unreadable.
func (j Judge) Score(ctx context.Context, exec Executor, instruction, input string, a *filter.Agreement) (Result, error) {
	k := len(a.Status)
	res := Result{Scores: make([]float64, k)}
	readable := make([]bool, k)
	g, gctx := errgroup.WithContext(ctx)
	for i := range k {
		if !a.Usable(i) {
			continue
		}
		res.Calls++
		req := j.Request(instruction, input, a.Texts[i])
		g.Go(func() error {
			resp, err := exec.Do(gctx, j.Model, req, 0)
			if err != nil {
				return fmt.Errorf("judge %s, candidate %d: %w", j.Model, i, err)
			}
			res.Scores[i], readable[i] = prompts.ParseJudgeScore(resp.Text, j.Style)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Result{}, err
	}
	for i := range k {
		if a.Usable(i) && !readable[i] {
			res.Unreadable++
		}
	}
	return res, nil
}
