package judge

import (
	"context"
	"errors"
	"math"
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
	return newPoolFor(t, style, fakeJudge)
}

// newPoolFor is a pool with one model, "judge", served by reply over real
// HTTP.
func newPoolFor(t *testing.T, style llm.Style, reply func(llmtest.Call) string) (*llm.Pool, *llmtest.Server) {
	t.Helper()
	srv := llmtest.NewServer(reply)
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

// answeringJudge answers the test tasks as a judge in ModeAnswer would,
// and writes no grades: an answer-mode judge is never asked for one.
func answeringJudge(c llmtest.Call) string {
	task := c.Prompt
	if c.Messages != nil {
		task = c.Messages[len(c.Messages)-1].Content
	}
	switch {
	case strings.Contains(task, "Score:") || strings.Contains(task, "Answer to grade"):
		return "Score: 10" // a rubric prompt: the test fails on its grades
	case strings.Contains(task, "capital of Australia"):
		return "Answer: Canberra."
	case strings.Contains(task, "capital of France"):
		return "Paris is the capital of France."
	case strings.Contains(task, "capital of Japan"):
		return "東京 —" // no word Rouge tokenizes: no grades
	}
	return "  "
}

// TestScoreAnswerThroughPool has a judge in ModeAnswer grade candidates
// over real HTTP, one call per example, and checks the grades (1 + 9·F
// of Rouge-L against the judge's answer, worked out by hand) and the judge
// rule's exact picks.
func TestScoreAnswerThroughPool(t *testing.T) {
	rows := []struct {
		instruction string
		cands       []filter.Candidate
		scores      []float64
		pick        int
		unreadable  int
	}{
		{
			// The judge's answer "Canberra." is one token. "Canberra is the
			// capital of Australia." holds it among six: F = 2/7. The two
			// wrong answers agree with each other, so the weighted rule
			// picks the first of them.
			"What is the capital of Australia?",
			[]filter.Candidate{{Text: "Sydney is the capital of Australia."}, {Text: "The capital is Sydney."}, {Text: "Canberra is the capital of Australia."}},
			[]float64{1, 1, 1 + 9*2.0/7}, 2, 0,
		},
		{
			// Stemmed: pari is the capit of franc. "The capital is Paris."
			// shares "the capit" (LCS 2 of 4 and 6 tokens: F = 0.4);
			// "Paris." shares one token of 1 and 6: F = 2/7. The failed and
			// the empty candidate are not graded.
			"What is the capital of France?",
			[]filter.Candidate{{Text: "The capital is Paris."}, {Status: filter.CandidateFailed}, {Text: "Paris is the capital of France."}, {Text: "?"}, {Text: "Paris."}, {Text: "Lyon has rivers"}},
			[]float64{1 + 9*0.4, 0, 10, 0, 1 + 9*2.0/7, 1}, 2, 0,
		},
		{
			// The judge says nothing: no grades, and the judge rule falls
			// back to the weighted rule's order.
			"Name a colour.",
			[]filter.Candidate{{Text: "blue"}, {Text: "red"}, {Text: "red"}},
			[]float64{0, 0, 0}, 1, 1,
		},
		{
			"What is the capital of Japan?",
			[]filter.Candidate{{Text: "Tokyo is the capital."}, {Text: "Kyoto is the capital."}},
			[]float64{0, 0}, 0, 1,
		},
		{
			// Nothing usable: no call.
			"Name a colour.",
			[]filter.Candidate{{Text: ""}, {Status: filter.CandidateFailed}},
			[]float64{0, 0}, -1, 0,
		},
	}
	for _, style := range []llm.Style{llm.StyleChat, llm.StyleCompletion} {
		t.Run(string(style), func(t *testing.T) {
			pool, srv := newPoolFor(t, style, answeringJudge)
			j := Judge{Model: "judge", Style: prompts.Style(style), Mode: ModeAnswer}
			calls := 0
			for i, r := range rows {
				a := filter.Measure(r.cands, filter.ConsensusOptions{})
				res, err := j.Score(context.Background(), pool, r.instruction, "", a)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.EqualFunc(res.Scores, r.scores, func(x, y float64) bool { return math.Abs(x-y) < 1e-12 }) || res.Unreadable != r.unreadable {
					t.Errorf("row %d: scores %v, %d unreadable; want %v, %d", i, res.Scores, res.Unreadable, r.scores, r.unreadable)
				}
				d := a.Select(filter.RuleJudge, filter.Votes{Judge: res.Scores}, filter.ConsensusOptions{})
				if d.Pick != r.pick {
					t.Errorf("row %d: pick %d (%s), want %d", i, d.Pick, d.Reason, r.pick)
				}
				calls += res.Calls
			}
			if w := filter.Decide(rows[0].cands, filter.Votes{}, filter.ConsensusOptions{Rule: filter.RuleWeighted}); w.Pick != 0 {
				t.Errorf("weighted rule picks %d on row 0, want 0: the row no longer tells the judge from it", w.Pick)
			}
			srv.WaitIdle()
			if calls != 4 || int(srv.Served()) != 4 {
				t.Errorf("%d calls, server served %d; want one per example with a usable candidate, 4", calls, srv.Served())
			}
		})
	}
}

func TestScoreAnswerError(t *testing.T) {
	a := filter.Measure([]filter.Candidate{{Text: "a"}, {Text: "b"}}, filter.ConsensusOptions{})
	_, err := Judge{Model: "j", Mode: ModeAnswer}.Score(context.Background(), failingExecutor{}, "x", "", a)
	if !errors.Is(err, errDown) || !strings.Contains(err.Error(), "judge j, its answer") {
		t.Errorf("error %v, want one wrapping the call's, naming the judge", err)
	}
}

func TestAnswerRequest(t *testing.T) {
	r := Judge{Model: "j", Style: prompts.StyleCompletion, Mode: ModeAnswer}.AnswerRequest("Say hi.", "to Ann")
	if r.Temperature != 0 || r.MaxTokens != DefaultAnswerMaxTokens || r.Prompt != "Say hi.\nto Ann" || r.Chat() {
		t.Errorf("completion request %+v", r)
	}
	c := Judge{Model: "j", Style: prompts.StyleChat, MaxTokens: 64}.AnswerRequest("Say hi.", "")
	if !c.Chat() || c.MaxTokens != 64 || len(c.Messages) != 2 {
		t.Errorf("chat request %+v", c)
	}
}

func TestParseMode(t *testing.T) {
	for s, want := range map[string]Mode{"": ModeRubric, "rubric": ModeRubric, "answer": ModeAnswer} {
		if m, err := ParseMode(s); m != want || err != nil {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", s, m, err, want)
		}
	}
	if _, err := ParseMode("vote"); err == nil || !strings.Contains(err.Error(), "rubric or answer") {
		t.Errorf("ParseMode(vote) error %v", err)
	}
}
