package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/spf13/cobra"
)

// ollamaEndpoint is the local Ollama server: $OLLAMA_HOST or the default.
func (a *app) ollamaEndpoint() (string, error) {
	ep, err := llm.DefaultEndpoint(llm.BackendOllama, a.getenv)
	return ep, badInput(err)
}

// autoPool chooses the pool of a run that names no models from what the
// local Ollama has (pulling a suggested pool first with pull), prints it,
// and returns it with the models it chose from. The judges (--judge) are
// not chosen for the pool; they are printed with it.
func (a *app) autoPool(ctx context.Context, pull bool, judges llm.Models, log *slog.Logger) (llm.Models, []llm.LocalModel, error) {
	endpoint, err := a.ollamaEndpoint()
	if err != nil {
		return nil, nil, err
	}
	installed, err := llm.ListOllama(ctx, nil, endpoint)
	if err != nil {
		return nil, nil, fmt.Errorf("no models given, and the local Ollama cannot list its own: %w", err)
	}
	// isJudge reports whether the named local model is a judge's.
	isJudge := func(name string) bool {
		local := llm.ModelInfo{Backend: llm.BackendOllama, Model: name, Endpoint: endpoint}
		return slices.ContainsFunc(judges, func(j llm.NamedModel) bool {
			return local.SameServed(llm.ModelInfo{Backend: j.Backend, Model: j.Model, Endpoint: cmp.Or(j.Endpoint, endpoint)})
		})
	}
	choosable := func(installed []llm.LocalModel) []llm.LocalModel {
		return slices.DeleteFunc(slices.Clone(installed), func(lm llm.LocalModel) bool { return isJudge(lm.Name) })
	}
	models, err := llm.ChoosePool(endpoint, choosable(installed))
	if errors.Is(err, llm.ErrTooFewModels) {
		if slices.ContainsFunc(installed, func(lm llm.LocalModel) bool { return isJudge(lm.Name) }) {
			err = fmt.Errorf("%w (the judge's model is left out of the pool)", err)
		}
		missing := missingModels(slices.DeleteFunc(llm.SuggestedPool(memTotal()), isJudge), installed)
		if !pull {
			var b strings.Builder
			fmt.Fprintf(&b, "%v\nget a pool sized for this machine with:\n", err)
			for _, m := range missing {
				fmt.Fprintf(&b, "  ollama pull %s\n", m)
			}
			b.WriteString("or run again with --pull, or name models with --model and --ensemble")
			return nil, nil, usagef("%s", b.String())
		}
		if err := a.pullModels(ctx, endpoint, missing, log); err != nil {
			return nil, nil, err
		}
		if installed, err = llm.ListOllama(ctx, nil, endpoint); err != nil {
			return nil, nil, err
		}
		models, err = llm.ChoosePool(endpoint, choosable(installed))
	}
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(a.stderr, "ensinstruct: no models given; the pool from %s:\n", endpoint)
	for _, m := range models {
		fmt.Fprintf(a.stderr, "  %-28s %-14s %s\n", m.Name, describeRoles(m.Roles), m.Style)
	}
	for _, m := range judges {
		fmt.Fprintf(a.stderr, "  %-28s %-14s %s\n", m.Name, "judge", m.Style)
	}
	return models, installed, nil
}

// describeRoles says what a model does in the pool, in a few words.
func describeRoles(rs []llm.Role) string {
	if slices.Contains(rs, llm.RoleEnsemble) && len(rs) == 1 {
		return "ensemble"
	}
	return "writer"
}

// missingModels returns the names of want the server does not have.
func missingModels(want []string, installed []llm.LocalModel) []string {
	var out []string
	for _, w := range want {
		if !slices.ContainsFunc(installed, func(m llm.LocalModel) bool { return m.Name == w || m.Name == w+":latest" }) {
			out = append(out, w)
		}
	}
	return out
}

// pullMissing pulls the Ollama models of the pool that their servers do
// not have (the pull: true setting and the --pull flag).
func (a *app) pullMissing(ctx context.Context, models llm.Models, log *slog.Logger) error {
	byEndpoint := map[string][]string{}
	var order []string
	pool, err := llm.NewPool(llm.Config{Models: models}, llm.WithGetenv(a.getenv))
	if err != nil {
		return badInput(err)
	}
	for _, m := range pool.All() {
		if m.Backend != llm.BackendOllama {
			continue
		}
		if _, ok := byEndpoint[m.Endpoint]; !ok {
			order = append(order, m.Endpoint)
		}
		byEndpoint[m.Endpoint] = append(byEndpoint[m.Endpoint], m.Model)
	}
	for _, ep := range order {
		installed, err := llm.ListOllama(ctx, nil, ep)
		if err != nil {
			return err
		}
		if err := a.pullModels(ctx, ep, missingModels(byEndpoint[ep], installed), log); err != nil {
			return err
		}
	}
	return nil
}

// pullModels pulls names one after the other, with their progress on
// stderr: a line per model redrawn in place on a terminal, JSON log lines
// otherwise.
func (a *app) pullModels(ctx context.Context, endpoint string, names []string, log *slog.Logger) error {
	for _, name := range names {
		p := &pullDisplay{w: a.stderr, bar: a.stderrIsTerminal(), log: log, model: name, start: time.Now()}
		err := llm.PullOllama(ctx, nil, endpoint, name, p.update)
		p.finish(err)
		if err != nil {
			return fmt.Errorf("pulling %s: %w", name, err)
		}
	}
	return nil
}

// pullDisplay shows one model's pull.
type pullDisplay struct {
	w     io.Writer
	bar   bool
	log   *slog.Logger
	model string
	start time.Time

	mu       sync.Mutex
	last     time.Time
	lastLine string
}

func (p *pullDisplay) update(pp llm.PullProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 200*time.Millisecond && pp.Status != "success" {
		return
	}
	p.last = time.Now()
	elapsed := time.Since(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(pp.Completed) / elapsed
	}
	eta := "-"
	if rate > 0 && pp.Total > pp.Completed {
		eta = (time.Duration(float64(pp.Total-pp.Completed)/rate) * time.Second).Round(time.Second).String()
	}
	if !p.bar {
		p.log.Info("pull", "model", p.model, "status", pp.Status, "completed", pp.Completed, "total", pp.Total,
			"bytes_per_s", int64(rate), "eta", eta)
		return
	}
	line := fmt.Sprintf("pulling %s: %s", p.model, pp.Status)
	if pp.Total > 0 {
		line = fmt.Sprintf("pulling %s: %s / %s, %s/s, ETA %s", p.model, humanBytes(pp.Completed), humanBytes(pp.Total), humanBytes(int64(rate)), eta)
	}
	fmt.Fprintf(p.w, "\r\x1b[2K%s", line)
	p.lastLine = line
}

func (p *pullDisplay) finish(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	status := "done"
	if err != nil {
		status = "failed"
	}
	if p.bar {
		fmt.Fprintf(p.w, "\r\x1b[2Kpulling %s: %s in %s\n", p.model, status, time.Since(p.start).Round(time.Second))
		return
	}
	p.log.Info("pull", "model", p.model, "status", status)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// memTotal is the machine's memory in bytes (Linux; 16 GiB elsewhere).
func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 16 << 30
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			if kb, err := strconv.ParseUint(fields[1], 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return 16 << 30
}

func (a *app) modelsListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Show the models the local Ollama has, and the pool generate would choose from them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			endpoint, err := a.ollamaEndpoint()
			if err != nil {
				return err
			}
			installed, err := llm.ListOllama(cmd.Context(), nil, endpoint)
			if err != nil {
				return err
			}
			pool, perr := llm.ChoosePool(endpoint, installed)
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MODEL\tSIZE\tFAMILY\tSTYLE\tPOOL")
			for _, m := range installed {
				role := "-"
				if i := slices.IndexFunc(pool, func(p llm.NamedModel) bool { return p.Name == m.Name }); i >= 0 {
					role = describeRoles(pool[i].Roles)
				} else if m.Embedding() {
					role = "(embedding)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, humanBytes(m.Size), m.Family, m.Style(), role)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if perr != nil {
				fmt.Fprintf(a.stderr, "ensinstruct: %v\n", perr)
			}
			return nil
		},
	}
}
