// Package judge grades candidate outputs with a judge model, for the
// consensus rule filter.RuleJudge. It sends its requests through an
// Executor (the pipeline's seam for model calls: the local pool, JetStream
// workers or the Batch API), and the grades go to filter.Votes.Judge.
//
// A judge works in one of two modes. In ModeRubric (the default) it renders
// prompts.JudgePrompt for every usable candidate and parses each reply
// with prompts.ParseJudgeScore. In ModeAnswer it answers the task itself,
// with the ensemble's prompts.AnswerPrompt, in one call per example, and
// grades each candidate by its agreement with that answer.
package judge

import (
	"context"
	"fmt"
	"slices"

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

// Mode is how a judge grades.
type Mode string

const (
	// ModeRubric grades every usable candidate on a 1–10 rubric, one call
	// per candidate (prompts.JudgePrompt). It is the default.
	ModeRubric Mode = "rubric"
	// ModeAnswer has the judge answer the task itself, one call per
	// example (prompts.AnswerPrompt, as an ensemble model is asked), and
	// grades each usable candidate 1 + 9·F, F its agreement with the
	// judge's answer as the consensus measures agreement
	// (filter.Agreement.AgreementWith). A judge that is also an ensemble
	// member would grade its own answer 10: give a model outside the pool.
	ModeAnswer Mode = "answer"
)

// ParseMode returns the Mode named s ("" means ModeRubric), or an error
// listing the choices.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "":
		return ModeRubric, nil
	case ModeRubric, ModeAnswer:
		return Mode(s), nil
	}
	return "", fmt.Errorf("unknown judge mode %q (want rubric or answer)", s)
}

// Bounds of a judge reply when Judge.MaxTokens is 0: the rubric asks for
// one line; an answer is bounded as the ensemble's answers are by default.
const (
	DefaultMaxTokens       = 32
	DefaultAnswerMaxTokens = 256
)

// Judge grades candidates with one model. The zero value is not usable:
// Model must be set. A Judge is a plain value, safe for concurrent use.
type Judge struct {
	// Model is the judge's name in the executor's pool.
	Model string
	// Style is how the prompt is rendered for the model.
	Style prompts.Style
	// Mode is how it grades; "" means ModeRubric.
	Mode Mode
	// MaxTokens bounds each reply; 0 means DefaultMaxTokens, or
	// DefaultAnswerMaxTokens in ModeAnswer.
	MaxTokens int
}

// Request returns the request that grades answer in ModeRubric. Judging is
// greedy (temperature 0), so a cached reply is the reply.
func (j Judge) Request(instruction, input, answer string) llm.Request {
	return j.request(prompts.JudgePrompt(j.Style, instruction, input, answer), DefaultMaxTokens)
}

// AnswerRequest returns the request that has the judge answer the task
// itself, in ModeAnswer; greedy, as Request.
func (j Judge) AnswerRequest(instruction, input string) llm.Request {
	return j.request(prompts.AnswerPrompt(j.Style, instruction, input), DefaultAnswerMaxTokens)
}

func (j Judge) request(p prompts.Prompt, maxTokens int) llm.Request {
	req := llm.Request{Prompt: p.Text, Stop: p.Stop, MaxTokens: j.MaxTokens}
	if req.MaxTokens == 0 {
		req.MaxTokens = maxTokens
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
	// Calls is the number of requests sent to the judge (ModeRubric: one
	// per usable candidate; ModeAnswer: one per example with a usable
	// candidate), Unreadable the replies among them with no readable grade
	// (ModeAnswer: an answer with no word to agree with; see
	// GradeByAnswer).
	Calls, Unreadable int
}

// Score grades every usable candidate of a measured example (see
// filter.Measure) for instruction and input, calling the judge for all of
// them at once; the executor bounds the concurrency. A failed call fails
// the whole example with its error, wrapped with the candidate's index; a
// reply with no readable grade scores 0 and is counted in Unreadable.
//
// In ModeAnswer it makes one call, and a failed call fails the example
// with its error; an empty answer leaves every score 0.
func (j Judge) Score(ctx context.Context, exec Executor, instruction, input string, a *filter.Agreement) (Result, error) {
	if j.Mode == ModeAnswer {
		return j.scoreByAnswer(ctx, exec, instruction, input, a)
	}
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

// scoreByAnswer is Score in ModeAnswer.
func (j Judge) scoreByAnswer(ctx context.Context, exec Executor, instruction, input string, a *filter.Agreement) (Result, error) {
	res := Result{Scores: make([]float64, len(a.Status))}
	if !slices.ContainsFunc(a.Status, func(s filter.CandidateStatus) bool { return s == filter.CandidateOK }) {
		return res, nil
	}
	res.Calls = 1
	resp, err := exec.Do(ctx, j.Model, j.AnswerRequest(instruction, input), 0)
	if err != nil {
		return Result{}, fmt.Errorf("judge %s, its answer: %w", j.Model, err)
	}
	var ok bool
	if res.Scores, ok = GradeByAnswer(a, prompts.ParseAnswer(resp.Text, j.Style)); !ok {
		res.Unreadable = 1
	}
	return res, nil
}

// GradeByAnswer grades the usable candidates of a against a judge's own
// answer as ModeAnswer does: 1 + 9·F, F the candidate's agreement with
// answer (filter.Agreement.AgreementWith), and 0 for an unusable
// candidate. It reports false, with every grade 0, when answer has no
// word to agree with (nothing left after normalization and tokenization,
// as for "—" or text in a script Rouge does not tokenize).
func GradeByAnswer(a *filter.Agreement, answer string) ([]float64, bool) {
	scores, ok := a.AgreementWith(answer)
	if !ok {
		return scores, false
	}
	for i, f := range scores {
		if a.Usable(i) {
			scores[i] = prompts.JudgeMin + (prompts.JudgeMax-prompts.JudgeMin)*f
		}
	}
	return scores, true
}
