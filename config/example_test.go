package config

import (
	"testing"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/internal/testdata"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline"
)

// TestExampleConfig keeps docs/example.yaml true: it must load, and the
// defaults it documents must be the defaults.
func TestExampleConfig(t *testing.T) {
	c, err := Load(testdata.Root(t)+"/../docs/example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pool.Models) != 3 || c.Pool.Models[0].Name != "writer" {
		t.Errorf("models: %v", c.Pool.Models.Names())
	}
	g := c.Generation
	if g.DemosA != pipeline.DefaultDemosA || g.DemosB != pipeline.DefaultDemosB ||
		g.MachineDemos != pipeline.DefaultMachineDemos || g.Window != pipeline.DefaultWindow ||
		g.MaxPending != pipeline.DefaultMaxPending || g.StallLimit != pipeline.DefaultStallLimit {
		t.Errorf("generation defaults differ from the documented ones: %+v", g)
	}
	if g.Instructions != pipeline.DefaultInstructionSampling() || g.Instances != pipeline.DefaultInstanceSampling() ||
		g.Ensemble != pipeline.DefaultEnsembleSampling() {
		t.Errorf("sampling defaults differ: %+v", g)
	}
	if *c.Filters.NoveltyThreshold != pipeline.DefaultNoveltyThreshold || *c.Filters.Consensus.MinAgreement != 0.01 ||
		c.Filters.Consensus.Select != string(filter.RuleReference) {
		t.Errorf("filter defaults differ: %+v", c.Filters)
	}
	o := c.Output
	if o.Format != string(output.FormatAlpaca) || o.Join != output.DefaultJoin || o.Card == nil || !*o.Card || o.Meta || c.Pull {
		t.Errorf("output defaults differ: %+v, pull %v", o, c.Pull)
	}
}

// docs/example.yaml runs as shipped: it describes a job whose pool builds
// with nothing but the API key in the environment.
func TestExampleConfigRuns(t *testing.T) {
	c, err := Load(testdata.Root(t)+"/../docs/example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.Job()
	if err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == "OPENAI_API_KEY" {
			return "sk-test"
		}
		return ""
	}
	pool, err := llm.NewPool(j.Pool, llm.WithGetenv(getenv))
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.MissingKeys(); err != nil {
		t.Error(err)
	}
}
