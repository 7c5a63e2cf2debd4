package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/llm"
)

// identityVersion changes when what the identity covers changes.
const identityVersion = 2

// Identity returns the run identity of resolved options: a hex SHA-256 of
// everything that decides the run's model calls, once defaults are
// applied — the seed set (by its digest), the run seed, the models
// (names, backends, model names, styles, roles, weights and the options
// that change their output), the demonstrations, window and sampling, the
// instruction checks, novelty threshold, instance rules and parser, and
// the excluded instructions. Two runs with the same identity make the same
// calls, share a run directory and its cache, and write the same record
// IDs: spelling a default out on the command line changes nothing.
//
// Targets, budgets, the consensus settings, the output, endpoint URLs and
// endpoint limits are left out: they change which calls are made or where
// they run, not what any call is, so raising -n or changing the output
// format reuses every finished call (the cache keys still tell endpoints
// apart).
func Identity(o Options, seedsSHA256 string) (string, error) {
	o = o.withDefaults()
	type model struct {
		Name, Backend, Model, Style string
		Roles                       []llm.Role
		Weight                      float64
		Options                     map[string]any
	}
	models := make([]model, len(o.Models))
	for i, m := range o.Models {
		w := m.Weight
		if w == 0 {
			w = 1
		}
		models[i] = model{Name: m.Name, Backend: string(m.Backend), Model: m.Model,
			Style: string(m.Style), Roles: m.Roles, Weight: w, Options: m.Options}
	}
	ex := sha256.New()
	for _, x := range o.Exclude {
		ex.Write([]byte(x))
		ex.Write([]byte{0})
	}
	key := struct {
		Version                      int
		Seeds                        string
		Seed                         int64
		Models                       []model
		DemosA, DemosB, MachineDemos int
		Window                       int
		Instr, Inst, Ens             Sampling
		Novelty                      float64
		MinWords, MaxWords           int
		Blacklist, Prefixes          []string
		ASCII, Compat                bool
		Rules                        filter.InstanceRules
		Exclude                      string
	}{
		identityVersion, seedsSHA256, o.Seed, models, o.DemosA, o.DemosB, o.machineDemos(), o.Window,
		o.InstructionSampling, o.InstanceSampling, o.EnsembleSampling, o.noveltyThreshold(),
		o.Checks.MinWords, o.Checks.MaxWords, o.Checks.Blacklist, o.Checks.BadPrefixes,
		o.Checks.ASCIIStart, o.CompatParser, o.Instance, hex.EncodeToString(ex.Sum(nil)),
	}
	b, err := json.Marshal(key)
	if err != nil {
		return "", fmt.Errorf("run identity: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// DefaultRunDir is the run directory of a run identity when none is given.
func DefaultRunDir(identity string) string {
	return filepath.Join(".ensinstruct", identity[:16])
}
