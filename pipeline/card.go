package pipeline

import (
	"strconv"

	"github.com/ensinstruct/ensinstruct/output"
)

// card is the dataset card of the run's output file, from its manifest.
func (r *Run) card(m Manifest) output.Card {
	c := output.Card{
		DataFile:   r.job.Output.Path,
		Container:  r.job.Output.Container,
		Options:    r.job.Output.Options,
		Rows:       m.Output.Records,
		Command:    "generate",
		License:    r.job.Output.License,
		Version:    m.Version,
		ConfigHash: m.ConfigHash,
		Status:     m.Status,
		Seed:       &m.Seed,
		Totals: &output.CardTotals{Calls: m.Totals.Calls, CacheHits: m.Totals.CacheHits,
			PromptTokens: m.Totals.PromptTokens, CompletionTokens: m.Totals.CompletionTokens, CostUSD: m.Totals.CostUSD},
	}
	for _, mi := range m.Models {
		cm := output.CardModel{Name: mi.Name, Backend: string(mi.Backend), Model: mi.Model, Weight: mi.Weight, Style: string(mi.Style)}
		for _, role := range mi.Roles {
			cm.Roles = append(cm.Roles, string(role))
		}
		c.Models = append(c.Models, cm)
	}
	for _, typ := range []string{"A", "B"} {
		n, ok := m.Counts[typ]
		if !ok || n.Target == 0 {
			continue
		}
		c.Types = append(c.Types, output.CardTypeCounts{Type: typ, Target: n.Target,
			InstructionRequests: n.InstructionRequests, InstructionsAccepted: n.InstructionsAccepted,
			InstanceRequests: n.InstanceRequests, InstancesValid: n.InstancesValid, EnsembleCalls: n.EnsembleCalls,
			Decided: n.Decided, Kept: n.Kept, Dropped: n.Dropped})
	}
	o := r.opts
	c.Thresholds = []output.CardSetting{
		{Name: "novelty threshold (Rouge-L F)", Value: strconv.FormatFloat(o.noveltyThreshold(), 'g', -1, 64)},
		{Name: "consensus metric", Value: string(o.Consensus.Metric)},
		{Name: "minimum pairwise agreement", Value: strconv.FormatFloat(*o.Consensus.MinAgreement, 'g', -1, 64)},
		{Name: "instruction words", Value: strconv.Itoa(o.Checks.MinWords) + " < n <= " + strconv.Itoa(o.Checks.MaxWords)},
		{Name: "window", Value: strconv.Itoa(o.Window)},
	}
	return c
}
