package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ensinstruct/ensinstruct/config"
	"github.com/ensinstruct/ensinstruct/curate"
	"github.com/ensinstruct/ensinstruct/judge"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/pipeline"
)

// filterPool builds the model pool of the online step and names its
// ensemble models: the --ensemble specs, or else the configuration's
// ensemble-role models.
func (a *app) filterPool(o filterFlags) (*llm.Pool, []llm.ModelInfo, func() error, error) {
	noop := func() error { return nil }
	var cfg llm.Config
	if o.config != "" {
		fc, err := config.Load(o.config, nil)
		if err != nil {
			return nil, nil, noop, a.inputError(err)
		}
		cfg = fc.Pool
	}
	var names []string
	for _, spec := range o.judges {
		name, mc, err := llm.ParseSpec(spec)
		if err != nil {
			return nil, nil, noop, badInput(fmt.Errorf("--judge: %w", err))
		}
		mc.Roles = []llm.Role{llm.RoleJudge}
		cfg.Models.Add(name, mc)
	}
	for _, spec := range o.ensemble {
		name, mc, err := llm.ParseSpec(spec)
		if err != nil {
			return nil, nil, noop, badInput(fmt.Errorf("--ensemble: %w", err))
		}
		mc.Roles = []llm.Role{llm.RoleEnsemble}
		name = cfg.Models.Add(name, mc)
		if slices.Contains(names, name) {
			// A model agreeing with itself is no consensus.
			return nil, nil, noop, usagef("--ensemble %s: given twice", spec)
		}
		names = append(names, name)
	}
	var popts []llm.Option
	closeCache := noop
	if !o.noCache {
		path := o.cache
		if path == "" {
			dir, err := os.UserCacheDir()
			if err != nil {
				return nil, nil, noop, fmt.Errorf("response cache: %w (give --cache FILE or --no-cache)", err)
			}
			path = filepath.Join(dir, "ensinstruct", "responses.db")
		}
		c, err := llm.OpenCache(path, llm.CacheWriteBehind(llm.WriteBehind))
		if err != nil {
			return nil, nil, noop, fmt.Errorf("%w (give another --cache FILE, or --no-cache)", err)
		}
		popts = append(popts, llm.WithCache(c))
		closeCache = c.Close
	}
	popts = append(popts, llm.WithGetenv(a.getenv), llm.WithLogger(a.logger()))
	pool, err := llm.NewPool(cfg, popts...)
	if err != nil {
		closeCache()
		return nil, nil, noop, badInput(err)
	}
	if len(names) == 0 && (o.config != "" || len(o.candidates) == 0) {
		names = pool.Models(llm.RoleEnsemble)
		if len(names) == 0 && len(o.candidates) == 0 {
			closeCache()
			return nil, nil, noop, usagef("%s has no model with the ensemble role: give one there or with --ensemble SPEC", o.config)
		}
	}
	refs := make([]llm.ModelInfo, len(names))
	for i, name := range names {
		refs[i], _ = pool.Info(name)
	}
	return pool, refs, closeCache, nil
}

// filterReport writes the counts on stderr.
func (a *app) filterReport(st curate.Stats, calls pipeline.StatsReporter, opts curate.Options) {
	dropped := 0
	type row struct {
		reason string
		n      int
	}
	var rows []row
	for r, n := range st.Dropped {
		dropped += n
		rows = append(rows, row{r, n})
	}
	slices.SortFunc(rows, func(x, y row) int {
		return cmp.Or(cmp.Compare(y.n, x.n), cmp.Compare(x.reason, y.reason))
	})
	var b strings.Builder
	fmt.Fprintf(&b, "filter: read %d, kept %d, dropped %d", st.Read, st.Kept, dropped)
	if st.Invalid > 0 {
		fmt.Fprintf(&b, ", skipped %d malformed", st.Invalid)
	}
	b.WriteString("\n")
	width := 0
	for _, r := range rows {
		width = max(width, len(r.reason))
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "  %-*s %*d\n", width, r.reason, len(strconv.Itoa(rows[0].n)), r.n)
	}
	if calls != nil {
		stats := calls.Stats()
		var calls, hits int64
		for _, m := range opts.Ensemble {
			calls += stats[m.Name].Calls
			hits += stats[m.Name].CacheHits
		}
		fmt.Fprintf(&b, "filter: %d ensemble calls, %d answered from the cache\n", calls, hits)
		if j := opts.Judge; j != nil {
			mode, _ := judge.ParseMode(string(j.Mode))
			fmt.Fprintf(&b, "filter: %d judge calls (%s mode), %d answered from the cache\n", st.JudgeCalls, mode, stats[j.Model].CacheHits)
		}
	}
	if st.Reliability != nil {
		b.WriteString(strings.Join(reliabilityLines(*st.Reliability, summaryColumns), "\n") + "\n")
	}
	if st.Misaligned > 0 {
		fmt.Fprintf(&b, "filter: warning: %d candidate records have another instruction than their input record (first: %s); are the candidate files aligned with the input?\n",
			st.Misaligned, st.FirstMisaligned)
	}
	io.WriteString(a.stderr, b.String())
}
