package judge

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/llm/llmtest"
	"github.com/ensinstruct/ensinstruct/prompts"
)

var _ Executor = (*llm.Pool)(nil)

// gradedAnswer returns the answer a judge prompt asks to grade.
func gradedAnswer(c llmtest.Call) string {
	if c.Messages != nil {
		_, a, _ := strings.Cut(c.Messages[len(c.Messages)-1].Content, "Answer to grade:\n")
		return a
	}
	i := strings.LastIndex(c.Prompt, "\nAnswer:")
	a := strings.TrimSuffix(c.Prompt[i+len("\nAnswer:"):], "\nScore:")
	return strings.TrimSpace(a)
}

// fakeJudge grades answers the way a careful judge would on the test
// rows, in the reply styles real models use.
func fakeJudge(c llmtest.Call) string {
	a := gradedAnswer(c)
	switch {
	case a == "Paris is the capital of France.":
		return "Score: 9"
	case a == "The capital is Paris.":
		return "**Rating:** 7/10"
	case a == "Paris.":
		return " 6"
	case strings.Contains(a, "Lyon"):
		return "Score: 10" // a confident judge, wrong: the agreement floor must stop it
	case strings.HasPrefix(a, "Nine"):
		return "I'd give this a score of 8 out of 10."
	case strings.HasPrefix(a, "9"):
		return `{"score": 4}`
	}
	return "I cannot grade this."
}

func newPool(t *testing.T, style llm.Style) (*llm.Pool, *llmtest.Server) {
	t.Helper()
	srv := llmtest.NewServer(fakeJudge)
	t.Cleanup(srv.Close)
	var cfg llm.Config
	cfg.Models.Set("judge", llm.ModelConfig{Backend: llm.BackendOllama, Model: "judge-model", Endpoint: srv.URL, Style: style})
	pool, err := llm.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pool, srv
}

// TestScoreThroughPool grades candidates over real HTTP through the model
// pool and checks the judge rule's exact picks.
func TestScoreThroughPool(t *testing.T) {
	rows := []struct {
		instruction, input string
		cands              []filter.Candidate
		scores             []float64
		pick               int
		reason             filter.Reason
	}{
		{
			"What is the capital of France?", "",
			[]filter.Candidate{{Text: "The capital is Paris."}, {Text: "Paris is the capital of France."}, {Text: "Paris."}, {Text: "Lyon has rivers"}},
			[]float64{7, 9, 6, 10}, 1, filter.ReasonJudged,
		},
		{
			"How many planets orbit the sun? Answer in words.", "Count the major planets.",
			[]filter.Candidate{{Text: "9 planets"}, {Status: filter.CandidateFailed}, {Text: "Nine planets"}, {Text: ""}, {Text: "planets: nine"}},
			[]float64{4, 0, 8, 0, 0}, 2, filter.ReasonJudged,
		},
	}
	for _, style := range []llm.Style{llm.StyleChat, llm.StyleCompletion} {
		t.Run(string(style), func(t *testing.T) {
			pool, srv := newPool(t, style)
			j := Judge{Model: "judge", Style: prompts.Style(style)}
			calls := 0
			for i, r := range rows {
				a := filter.Measure(r.cands, filter.ConsensusOptions{})
				res, err := j.Score(context.Background(), pool, r.instruction, r.input, a)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(res.Scores, r.scores) {
					t.Errorf("row %d: scores %v, want %v", i, res.Scores, r.scores)
				}
				d := a.Select(filter.RuleJudge, filter.Votes{Judge: res.Scores}, filter.ConsensusOptions{})
				if d.Pick != r.pick || d.Reason != r.reason || !slices.Equal(d.Judge, r.scores) {
					t.Errorf("row %d: pick %d %s judge %v, want %d %s", i, d.Pick, d.Reason, d.Judge, r.pick, r.reason)
				}
				calls += res.Calls
			}
			// Row 2: "planets: nine" gets an unreadable reply; the failed and
			// the empty candidate are not sent.
			srv.WaitIdle()
			if calls != 7 || int(srv.Served()) != 7 {
				t.Errorf("%d calls, server served %d; want 7", calls, srv.Served())
			}
		})
	}
}

func TestScoreUnreadable(t *testing.T) {
	pool, _ := newPool(t, llm.StyleChat)
	a := filter.Measure([]filter.Candidate{{Text: "Nine planets"}, {Text: "planets: nine"}}, filter.ConsensusOptions{})
	res, err := Judge{Model: "judge", Style: prompts.StyleChat}.Score(context.Background(), pool, "Count.", "", a)
	if err != nil || res.Unreadable != 1 || res.Calls != 2 || !slices.Equal(res.Scores, []float64{8, 0}) {
		t.Errorf("Score = %+v, %v; want scores [8 0], 1 unreadable of 2", res, err)
	}
}

// failingExecutor fails every call, as a model that is down for good.
type failingExecutor struct{}

var errDown = errors.New("model down")

func (failingExecutor) Do(context.Context, string, llm.Request, int) (llm.Response, error) {
	return llm.Response{}, errDown
}

func TestScoreError(t *testing.T) {
	a := filter.Measure([]filter.Candidate{{Text: "a"}, {Text: "b"}}, filter.ConsensusOptions{})
	_, err := Judge{Model: "j"}.Score(context.Background(), failingExecutor{}, "x", "", a)
	if !errors.Is(err, errDown) || !strings.Contains(err.Error(), "judge j, candidate") {
		t.Errorf("error %v, want one wrapping the call's, naming the judge and candidate", err)
	}
}

func TestRequest(t *testing.T) {
	r := Judge{Model: "j", Style: prompts.StyleCompletion}.Request("Say hi.", "", "hello")
	if r.Temperature != 0 || r.MaxTokens != DefaultMaxTokens || !strings.HasSuffix(r.Prompt, "Score:") || r.Chat() {
		t.Errorf("completion request %+v", r)
	}
	c := Judge{Model: "j", Style: prompts.StyleChat, MaxTokens: 8}.Request("Say hi.", "", "hello")
	if !c.Chat() || c.MaxTokens != 8 || len(c.Messages) != 2 || c.Messages[0].Role != "system" {
		t.Errorf("chat request %+v", c)
	}
}
