package pipeline

import (
	"context"
	"errors"
	"sync"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/prompts"
)

// Ensemble is the method's third stage, the one step that both generate
// and the filter command's online consensus run: every ensemble model
// answers an (instruction, input) pair zero-shot, and the consensus rule
// picks among the example's own output and the answers. The zero value is
// not useful; set Models. It is safe for concurrent use.
type Ensemble struct {
	// Models answer, in this order: candidate i+1 is Models[i]'s answer.
	Models []llm.ModelInfo
	// Sampling is the decoding of the answers; zero means
	// DefaultEnsembleSampling.
	Sampling Sampling
	// Consensus parameterizes the rule.
	Consensus filter.ConsensusOptions
}

// Names returns the models' names in candidate order (from candidate 1).
func (e *Ensemble) Names() []string {
	names := make([]string, len(e.Models))
	for i, m := range e.Models {
		names[i] = m.Name
	}
	return names
}

// Ask has every model answer instruction and input through exec, all at
// once, and returns the parsed answers in model order. The requests are
// fixed by (seed, place, index): place names the caller's stream (a task
// type, or "filter"), index the example in it. A failed call cancels the
// others and is returned; a call the budget refused (ErrBudget) lets the
// others finish and is returned once they have.
func (e *Ensemble) Ask(ctx context.Context, exec Executor, seed int64, place string, index int, instruction, input string) ([]string, error) {
	sampling := e.Sampling
	if sampling == (Sampling{}) {
		sampling = DefaultEnsembleSampling()
	}
	answers := make([]string, len(e.Models))
	errs := make([]error, len(e.Models))
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for j, m := range e.Models {
		style := prompts.Style(m.Style)
		req := toRequest(prompts.AnswerPrompt(style, instruction, input), sampling,
			newRNG(seed, place, "ensemble/"+m.Name, index))
		wg.Go(func() {
			r, err := exec.Do(cctx, m.Name, req, 0)
			if err != nil {
				errs[j] = err
				if !errors.Is(err, ErrBudget) {
					cancel() // a real failure: the example cannot be decided
				}
				return
			}
			answers[j] = prompts.ParseAnswer(r.Text, style)
		})
	}
	wg.Wait()
	// A real failure wins over a budget refusal; a refusal leaves the
	// calls that did start to finish, so that they are cached.
	var refused error
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, ErrBudget):
			refused = err
		case errors.Is(err, context.Canceled) && ctx.Err() == nil:
			// cancelled because a sibling failed: report the sibling
		default:
			return nil, err
		}
	}
	if refused != nil {
		return nil, refused
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return answers, nil
}

// Decide applies the consensus rule to own (candidate 0) and answers.
func (e *Ensemble) Decide(own string, answers []string) filter.Decision {
	cands := make([]string, 0, 1+len(answers))
	cands = append(cands, own)
	cands = append(cands, answers...)
	return filter.Consensus(cands, e.Consensus)
}

// ConsensusMeta is the provenance form of a decision.
func ConsensusMeta(d filter.Decision) *output.ConsensusMeta {
	return &output.ConsensusMeta{
		Reason: string(d.Reason), Pick: d.Pick, Pairwise: d.Pairwise,
		Scores: d.Scores, MinPair: d.MinPair,
	}
}
