package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/judge"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/prompts"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

const evalSelectLong = `Measure how well the consensus rules pick, on examples whose right answer is
known. Every candidate file holds one model's outputs, line-aligned with the
targets file; the first candidate file plays the example's own output
(candidate 0), as in generate, and ties go to the earlier candidate.

For each rule it prints the mean target Rouge-L (F with stemming, as
rouge_score computes it) of the candidate the rule ranks first, on every row
with nothing dropped; then how many rows the rule's agreement floor would
drop, and the mean target score of the kept and of the dropped rows. For
comparison: each member alone, the members' mean, the best member and the
oracle (each row's best candidate). Then the members' reliability: how often
each was picked, its empty, failed and rejected outputs, its estimated
weight and its mean agreement with every other member.

Rules:
  reference        the Ensemble-Instruct rule (the default of generate and
                   filter)
  weighted         reliability-weighted rank voting, weights estimated from
                   all rows first (two passes, as filter can on files)
  weighted-stream  the same, each row decided with the weights of the rows
                   before it (as generate does)
  judge            with --judge: the best-graded candidate among those whose
                   agreement clears the floor

Input. Targets: JSON lines with the right answer in --target-field (default
"target"), and "instruction" and "input" when --judge is given. Candidates:
JSON lines with the output in --field (default "output"); null marks a failed
call, left out of the vote. Members are named after their files.

See docs/consensus.md for the rules and the measured results.`

// evalSelectFlags are the flags of eval-select.
type evalSelectFlags struct {
	targets      string
	candidates   []string
	field        string
	targetField  string
	metric       string
	minAgreement float64
	keepRepeats  bool
	judge        string
	judgeStyle   string
	judgeMode    string
	judgeAnswers string
	cache        string
	asJSON       bool
}

func (a *app) evalSelectCmd() *cobra.Command {
	var o evalSelectFlags
	cmd := &cobra.Command{
		Use:   "eval-select --targets FILE --candidates FILE --candidates FILE...",
		Short: "Measure the consensus rules' picks against known right answers",
		Long:  evalSelectLong,
		Example: `  ensinstruct eval-select --targets targets.jsonl \
    --candidates model-a.jsonl --candidates model-b.jsonl --candidates model-c.jsonl
  ensinstruct eval-select --targets targets.jsonl --candidates a.jsonl --candidates b.jsonl \
    --judge ollama:qwen2.5:7b --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.evalSelect(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.targets, "targets", "", "JSON lines with the right answers (required)")
	f.StringArrayVar(&o.candidates, "candidates", nil, "JSON lines with one member's outputs, line-aligned with --targets (two or more; the first is candidate 0)")
	f.StringVar(&o.field, "field", "output", "candidate files: the `FIELD` holding the output")
	f.StringVar(&o.targetField, "target-field", "target", "targets file: the `FIELD` holding the right answer")
	f.StringVar(&o.metric, "metric", string(filter.MetricRougeL), "agreement between candidates: rougeL or rouge1")
	f.Float64Var(&o.minAgreement, "min-agreement", filter.DefaultMinAgreement, "agreement floor: rows at or below `SCORE` count as dropped")
	f.BoolVar(&o.keepRepeats, "keep-repetitive", false, "let outputs caught in a loop take part in the vote (generate's default instance rules reject them)")
	f.StringVar(&o.judge, "judge", "", "judge model `SPEC` (ollama:NAME[@URL] or openai:NAME[@BASE_URL]): also evaluate the judge rule")
	f.StringVar(&o.judgeStyle, "judge-style", "", "judge prompt style: chat or completion (default: the backend's)")
	f.StringVar(&o.judgeMode, "judge-mode", "", "how the judge grades: rubric (a 1-10 grade per candidate; the default with --judge) or answer (it answers; candidates graded by agreement)")
	f.StringVar(&o.judgeAnswers, "judge-answers", "", "JSON lines with a judge's own answers in --field, line-aligned with --targets: evaluate the judge rule in answer mode with these answers, calling no model")
	f.StringVar(&o.cache, "cache", "", "response cache `FILE` for the judge's calls (default: none)")
	f.BoolVar(&o.asJSON, "json", false, "print the report as one JSON object")
	return cmd
}

// evalSelectReport is the --json output.
type evalSelectReport struct {
	Options evalSelectOptions `json:"options"`
	filter.SelectionReport
	// JudgeCalls and JudgeUnreadable count the judge's calls and the
	// replies with no readable grade.
	JudgeCalls      int `json:"judge_calls,omitempty"`
	JudgeUnreadable int `json:"judge_unreadable,omitempty"`
}

// evalSelectOptions records the settings of a report.
type evalSelectOptions struct {
	Metric           string  `json:"metric"`
	MinAgreement     float64 `json:"min_agreement"`
	RejectRepetitive bool    `json:"reject_repetitive"`
	Judge            string  `json:"judge,omitempty"`
	JudgeMode        string  `json:"judge_mode,omitempty"`
	JudgeAnswers     string  `json:"judge_answers,omitempty"`
}

// evalSelectWindow is how many rows are graded by the judge at once.
const evalSelectWindow = 16

func (a *app) evalSelect(ctx context.Context, o evalSelectFlags) error {
	if o.targets == "" {
		return usagef("--targets FILE is required")
	}
	if len(o.candidates) < 2 {
		return usagef("give two or more --candidates FILE (got %d)", len(o.candidates))
	}
	metric := filter.Metric(o.metric)
	if metric != filter.MetricRougeL && metric != filter.MetricRouge1 {
		return usagef("--metric %q: want rougeL or rouge1", o.metric)
	}
	opts := filter.ConsensusOptions{Metric: metric, MinAgreement: &o.minAgreement, RejectRepetitive: !o.keepRepeats}
	names := make([]string, len(o.candidates))
	for i, c := range o.candidates {
		names[i] = strings.TrimSuffix(filepath.Base(c), filepath.Ext(c))
		for j := range i {
			if names[j] == names[i] {
				return usagef("--candidates %s and %s: two members named %q", o.candidates[j], c, names[i])
			}
		}
	}
	mode, err := judge.ParseMode(o.judgeMode)
	if err != nil {
		return usagef("--judge-mode: %v", err)
	}
	switch {
	case o.judge != "" && o.judgeAnswers != "":
		return usagef("--judge and --judge-answers: give one")
	case o.judge == "" && o.judgeAnswers == "" && o.judgeMode != "":
		return usagef("--judge-mode needs --judge")
	case o.judge == "" && (o.judgeStyle != "" || o.cache != ""):
		return usagef("--judge-style and --cache apply to the calls of --judge")
	case o.judgeAnswers != "" && o.judgeMode != "" && mode != judge.ModeAnswer:
		return usagef("--judge-answers grades in answer mode, not --judge-mode %s", mode)
	case o.judgeAnswers != "":
		mode = judge.ModeAnswer
	}
	var j *judge.Judge
	var pool *llm.Pool
	if o.judge != "" {
		var closePool func() error
		var err error
		pool, j, closePool, err = a.evalSelectJudge(o)
		if err != nil {
			return err
		}
		defer closePool()
		j.Mode = mode
	}

	targets, err := openEvalFile(o.targets, o.targetField)
	if err != nil {
		return err
	}
	defer targets.close()
	cands := make([]*evalFile, len(o.candidates))
	for i, c := range o.candidates {
		if cands[i], err = openEvalFile(c, o.field); err != nil {
			return err
		}
		defer cands[i].close()
	}
	// The judge's answers are read in lockstep as one more column, split
	// off before the vote.
	answers := o.judgeAnswers != ""
	if answers {
		f, err := openEvalFile(o.judgeAnswers, o.field)
		if err != nil {
			return err
		}
		defer f.close()
		cands = append(cands, f)
	}

	eval := filter.NewSelectionEval(names, opts)
	rep := evalSelectReport{Options: evalSelectOptions{
		Metric: string(metric), MinAgreement: o.minAgreement, RejectRepetitive: opts.RejectRepetitive, Judge: o.judge,
		JudgeAnswers: o.judgeAnswers,
	}}
	if j != nil || answers {
		rep.Options.JudgeMode = string(mode)
	}
	for {
		rows, err := readEvalRows(targets, cands, j != nil, evalSelectWindow)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			break
		}
		switch {
		case j != nil:
			if err := gradeEvalRows(ctx, *j, pool, rows, opts, &rep); err != nil {
				return err
			}
		case answers:
			gradeEvalAnswers(rows, opts, &rep)
		}
		for _, r := range rows {
			eval.Add(r.cands, r.target, r.judge)
		}
	}
	rep.SelectionReport = eval.Report()
	if rep.Rows == 0 {
		return badInput(fmt.Errorf("%s: no rows", o.targets))
	}
	if o.asJSON {
		return json.NewEncoder(a.stdout).Encode(rep)
	}
	return writeEvalTable(a.stdout, rep, names)
}

// evalSelectJudge builds the judge's pool from --judge.
func (a *app) evalSelectJudge(o evalSelectFlags) (*llm.Pool, *judge.Judge, func() error, error) {
	noop := func() error { return nil }
	name, mc, err := llm.ParseSpec(o.judge)
	if err != nil {
		return nil, nil, noop, badInput(fmt.Errorf("--judge: %w", err))
	}
	if o.judgeStyle != "" {
		st, err := prompts.ParseStyle(o.judgeStyle)
		if err != nil {
			return nil, nil, noop, badInput(fmt.Errorf("--judge-style: %w", err))
		}
		mc.Style = llm.Style(st)
	}
	var cfg llm.Config
	cfg.Models.Set(name, mc)
	popts := []llm.Option{llm.WithGetenv(a.getenv),
		llm.WithLogger(slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))}
	closeCache := noop
	if o.cache != "" {
		c, err := llm.OpenCache(o.cache)
		if err != nil {
			return nil, nil, noop, fmt.Errorf("--cache: %w", err)
		}
		popts = append(popts, llm.WithCache(c))
		closeCache = c.Close
	}
	pool, err := llm.NewPool(cfg, popts...)
	if err != nil {
		closeCache()
		return nil, nil, noop, badInput(fmt.Errorf("--judge: %w", err))
	}
	info, _ := pool.Info(name)
	return pool, &judge.Judge{Model: name, Style: prompts.Style(info.Style)}, closeCache, nil
}

// evalRow is one line of every input file.
type evalRow struct {
	instruction, input, target string
	cands                      []filter.Candidate
	judge                      []float64
}

// readEvalRows reads up to n rows in lockstep from the targets and every
// candidate file; fewer at the end. A file that ends before the targets
// (or goes on after them) is bad input.
func readEvalRows(targets *evalFile, cands []*evalFile, needTask bool, n int) ([]evalRow, error) {
	var rows []evalRow
	for len(rows) < n {
		t, ok, err := targets.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			for _, c := range cands {
				if _, more, err := c.next(); err != nil {
					return nil, err
				} else if more {
					return nil, badInput(fmt.Errorf("%s:%d: more rows than %s", c.name, c.line, targets.name))
				}
			}
			break
		}
		if t.text == nil {
			return nil, badInput(fmt.Errorf("%s:%d: field %q is null", targets.name, targets.line, targets.field))
		}
		r := evalRow{target: *t.text, cands: make([]filter.Candidate, len(cands))}
		if needTask {
			if t.instruction == nil {
				return nil, badInput(fmt.Errorf("%s:%d: field \"instruction\" is missing (the judge needs the task)", targets.name, targets.line))
			}
			r.instruction = *t.instruction
			if t.input != nil {
				r.input = *t.input
			}
		}
		for i, c := range cands {
			v, ok, err := c.next()
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, badInput(fmt.Errorf("%s: fewer rows than %s", c.name, targets.name))
			}
			if v.text == nil {
				r.cands[i].Status = filter.CandidateFailed
			} else {
				r.cands[i].Text = *v.text
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// gradeEvalRows has the judge grade every row's usable candidates,
// concurrently.
func gradeEvalRows(ctx context.Context, j judge.Judge, exec judge.Executor, rows []evalRow, opts filter.ConsensusOptions, rep *evalSelectReport) error {
	results := make([]judge.Result, len(rows))
	g, gctx := errgroup.WithContext(ctx)
	for i := range rows {
		g.Go(func() error {
			a := filter.Measure(rows[i].cands, opts)
			var err error
			results[i], err = j.Score(gctx, exec, rows[i].instruction, rows[i].input, a)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, r := range results {
		rows[i].judge = r.Scores
		rep.JudgeCalls += r.Calls
		rep.JudgeUnreadable += r.Unreadable
	}
	return nil
}

// gradeEvalAnswers grades every row's usable candidates against the
// judge's answer, the row's last candidate column (--judge-answers), as
// the judge's answer mode does, and removes that column. A missing (null)
// or empty answer leaves the row ungraded.
func gradeEvalAnswers(rows []evalRow, opts filter.ConsensusOptions, rep *evalSelectReport) {
	for i := range rows {
		r := &rows[i]
		answer := r.cands[len(r.cands)-1]
		r.cands = r.cands[:len(r.cands)-1]
		var ok bool
		r.judge, ok = judge.GradeByAnswer(filter.Measure(r.cands, opts), answer.Text)
		if !ok {
			rep.JudgeUnreadable++
		}
	}
}

// evalLine is the part of an input line eval-select reads.
type evalLine struct {
	text, instruction, input *string
}

// evalFile reads one JSON-lines input.
type evalFile struct {
	name, field string
	f           *os.File
	sc          *bufio.Scanner
	line        int
}

func openEvalFile(name, field string) (*evalFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, badInput(err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), scoreMaxLine)
	return &evalFile{name: name, field: field, f: f, sc: sc}, nil
}

func (e *evalFile) close() { e.f.Close() }

// next returns the next non-blank line's fields; ok is false at the end.
// A line without the field, or with a non-string one, is bad input.
func (e *evalFile) next() (evalLine, bool, error) {
	for e.sc.Scan() {
		e.line++
		b := e.sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return evalLine{}, false, badInput(fmt.Errorf("%s:%d: invalid JSON: %w", e.name, e.line, err))
		}
		raw, ok := m[e.field]
		if !ok {
			return evalLine{}, false, badInput(fmt.Errorf("%s:%d: field %q is missing", e.name, e.line, e.field))
		}
		var l evalLine
		for _, f := range []struct {
			name string
			raw  json.RawMessage
			dst  **string
		}{{e.field, raw, &l.text}, {"instruction", m["instruction"], &l.instruction}, {"input", m["input"], &l.input}} {
			if f.raw == nil {
				continue
			}
			if err := json.Unmarshal(f.raw, f.dst); err != nil {
				return evalLine{}, false, badInput(fmt.Errorf("%s:%d: field %q is not a string", e.name, e.line, f.name))
			}
		}
		return l, true, nil
	}
	if err := e.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return evalLine{}, false, badInput(fmt.Errorf("%s:%d: line longer than %d MiB", e.name, e.line+1, scoreMaxLine>>20))
		}
		return evalLine{}, false, fmt.Errorf("reading %s: %w", e.name, err)
	}
	return evalLine{}, false, nil
}

// writeEvalTable prints the report for a reader.
func writeEvalTable(w io.Writer, rep evalSelectReport, names []string) error {
	var b strings.Builder
	screen := "repetitive outputs rejected"
	if !rep.Options.RejectRepetitive {
		screen = "repetitive outputs kept"
	}
	fmt.Fprintf(&b, "%d rows, %d members (candidate 0: %s); agreement %s, floor %g; %s\n",
		rep.Rows, len(names), names[0], rep.Options.Metric, rep.Options.MinAgreement, screen)
	b.WriteString("score: target Rouge-L F (stemmed) of the pick on every row, nothing dropped\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rule\tscore\tvs best\tvs mean\tkept\tdropped\tkept score\tdropped score\t")
	for _, r := range rep.Rules {
		fmt.Fprintf(tw, "%s\t%.4f\t%+.4f\t%+.4f\t%d\t%.1f%%\t%.4f\t%.4f\t\n", r.Rule, r.Score,
			r.Score-rep.BestMember, r.Score-rep.MemberMean, r.Kept, 100*r.DropRate(), r.KeptScore, r.DroppedScore)
	}
	tw.Flush()
	b.WriteByte('\n')
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, m := range rep.Members {
		fmt.Fprintf(tw, "%s\t%.4f\n", m.Name, m.Score)
	}
	fmt.Fprintf(tw, "member mean\t%.4f\nbest member\t%.4f\noracle\t%.4f\n", rep.MemberMean, rep.BestMember, rep.Oracle)
	tw.Flush()
	switch {
	case rep.Options.JudgeAnswers != "":
		fmt.Fprintf(&b, "\njudge: the answers in %s (answer mode), %d rows without one\n", rep.Options.JudgeAnswers, rep.JudgeUnreadable)
	case rep.Options.JudgeMode == string(judge.ModeAnswer):
		fmt.Fprintf(&b, "\njudge %s (answer mode): %d calls, %d empty answers\n", rep.Options.Judge, rep.JudgeCalls, rep.JudgeUnreadable)
	case rep.Options.Judge != "":
		fmt.Fprintf(&b, "\njudge %s: %d calls, %d replies without a readable grade\n", rep.Options.Judge, rep.JudgeCalls, rep.JudgeUnreadable)
	}
	b.WriteString("\nreliability (two-pass weights; won = kept picks of the weighted rule)\n")
	b.WriteString(rep.Reliability.String())
	_, err := io.WriteString(w, b.String())
	return err
}
