package pipeline

import (
	"context"
	"errors"
	"sync"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/internal/workers"
	"github.com/ensinstruct/ensinstruct/judge"
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
	// Consensus parameterizes the rule (Consensus.Rule chooses it).
	Consensus filter.ConsensusOptions
	// Judge grades the candidates for filter.RuleJudge; nil otherwise.
	Judge *judge.Judge
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
		ask := func() {
			r, err := exec.Do(cctx, m.Name, req, 0)
			if err != nil {
				errs[j] = err
				if !errors.Is(err, ErrBudget) {
					cancel() // a real failure: the example cannot be decided
				}
				return
			}
			answers[j] = prompts.ParseAnswer(r.Text, style)
		}
		if j == len(e.Models)-1 {
			ask() // the last on this goroutine, whose stack has grown
			break
		}
		wg.Add(1)
		workers.Go(func() { defer wg.Done(); ask() })
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

// Measure screens own (candidate 0) and the answers and scores every
// pair: the costly, rule-independent part of a decision, which may run in
// parallel. Empty outputs, and with Consensus.RejectRepetitive looping
// ones, take no part in the vote.
func (e *Ensemble) Measure(own string, answers []string) *filter.Agreement {
	cands := make([]filter.Candidate, 0, 1+len(answers))
	cands = append(cands, filter.Candidate{Text: own})
	for _, a := range answers {
		cands = append(cands, filter.Candidate{Text: a})
	}
	return filter.Measure(cands, e.Consensus)
}

// Grade has the judge grade the usable candidates of a (RuleJudge only;
// nil scores otherwise), through exec.
func (e *Ensemble) Grade(ctx context.Context, exec Executor, instruction, input string, a *filter.Agreement) (judge.Result, error) {
	if e.Judge == nil || e.Consensus.Rule != filter.RuleJudge {
		return judge.Result{}, nil
	}
	return e.Judge.Score(ctx, exec, instruction, input, a)
}

// Select applies the rule to a measured example, with member weights from
// rel (the decisions seen so far; nil means equal weights) and the judge's
// scores, and records the decision in rel. Callers select in a fixed
// order (acceptance order, input order), so that weighted decisions are
// deterministic.
func (e *Ensemble) Select(a *filter.Agreement, rel *filter.Reliability, judgeScores []float64) filter.Decision {
	names := e.candidateNames()
	var v filter.Votes
	v.Judge = judgeScores
	if rel != nil && e.Consensus.Rule != "" && e.Consensus.Rule != filter.RuleReference {
		v.Weights = rel.Weights(names)
	}
	rule := e.Consensus.Rule
	if rule == "" {
		rule = filter.RuleReference
	}
	d := a.Select(rule, v, e.Consensus)
	if rel != nil {
		rel.Observe(names, d)
	}
	return d
}

// candidateNames names the candidates' authors for the reliability
// statistics: candidate 0 is "own" (the example's own output), then the
// models.
func (e *Ensemble) candidateNames() []string {
	return append([]string{OwnCandidate}, e.Names()...)
}

// OwnCandidate names candidate 0, the example's own output, in the
// reliability statistics.
const OwnCandidate = "(own output)"

// ConsensusMeta is the provenance form of a decision.
func ConsensusMeta(d filter.Decision) *output.ConsensusMeta {
	return &output.ConsensusMeta{
		Reason: string(d.Reason), Pick: d.Pick, Pairwise: d.Pairwise,
		Scores: d.Scores, MinPair: d.MinPair, Judge: d.Judge,
	}
}
