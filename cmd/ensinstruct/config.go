package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"go.yaml.in/yaml/v3"
)

// fileConfig is the YAML configuration file (-c). Unknown fields are
// errors. Every field can also be set from the command line, with a
// dedicated flag or with --set PATH=VALUE. Relative paths in the file are
// relative to the file's directory.
type fileConfig struct {
	// Pool is the model pool: the models, endpoints and retry sections at
	// the top level of the file.
	Pool llm.Config `yaml:",inline"`

	// Seed makes every random choice of a run reproducible.
	Seed *int64 `yaml:"seed"`
	// Seeds is the seed-task file; empty means the embedded default set.
	Seeds string `yaml:"seeds"`
	// N is the number of examples to keep, split between the types in
	// the seeds' A:B ratio; NA and NB set a type's count directly.
	N  *int `yaml:"n"`
	NA *int `yaml:"n_a"`
	NB *int `yaml:"n_b"`
	// Exclude lists datasets whose instructions count as already
	// generated (for example earlier runs' output).
	Exclude []string `yaml:"exclude"`
	// RunDir holds the response cache and, when the output is stdout,
	// the manifest. Default: .ensinstruct/<config hash>.
	RunDir string `yaml:"run_dir"`

	Output     outputConfig     `yaml:"output"`
	Budget     budgetConfig     `yaml:"budget"`
	Generation generationConfig `yaml:"generation"`
	Filters    filtersConfig    `yaml:"filters"`
	// Progress is auto (a bar on a terminal, log lines otherwise), bar,
	// log or none.
	Progress string `yaml:"progress"`
}

type outputConfig struct {
	Path     string `yaml:"path"`     // "" or "-": stdout
	Format   string `yaml:"format"`   // alpaca, openai or sharegpt
	Meta     bool   `yaml:"meta"`     // add provenance to every record
	Manifest string `yaml:"manifest"` // default: next to the output, or in the run directory
}

type budgetConfig struct {
	MaxRequests int64   `yaml:"max_requests"` // model calls that reach a server (cache hits are free)
	MaxCostUSD  float64 `yaml:"max_cost_usd"` // at the models' configured prices
}

type generationConfig struct {
	DemosA       int `yaml:"demos_a"`
	DemosB       int `yaml:"demos_b"`
	MachineDemos int `yaml:"machine_demos"`
	Window       int `yaml:"window"`
	MaxPending   int `yaml:"max_pending"`
	StallLimit   int `yaml:"stall_limit"`
	// Decoding settings per stage; fields not given keep the defaults.
	Instructions pipeline.Sampling `yaml:"instructions"`
	Instances    pipeline.Sampling `yaml:"instances"`
	Ensemble     pipeline.Sampling `yaml:"ensemble"`
}

type filtersConfig struct {
	NoveltyThreshold *float64 `yaml:"novelty_threshold"`
	MinWords         *int     `yaml:"min_words"`
	MaxWords         *int     `yaml:"max_words"`
	Blacklist        []string `yaml:"blacklist"`
	BadPrefixes      []string `yaml:"bad_prefixes"`
	ASCIIStart       *bool    `yaml:"ascii_start"`
	// Parser is robust (default) or compat (the reference's).
	Parser               string          `yaml:"parser"`
	AllowEmptyInput      bool            `yaml:"allow_empty_input"`
	AllowInstructionEcho bool            `yaml:"allow_instruction_echo"`
	AllowRepetition      bool            `yaml:"allow_repetition"`
	Consensus            consensusConfig `yaml:"consensus"`
}

type consensusConfig struct {
	Metric       string   `yaml:"metric"` // rougeL or rouge1
	MinAgreement *float64 `yaml:"min_agreement"`
}

// loadConfig reads and validates the configuration file at path. Every
// problem is bad input (exit 2) reported as FILE:LINE: message (decoding)
// or FILE: field: message (validation).
func loadConfig(path string) (*fileConfig, error) {
	return loadConfigWith(path, nil)
}

// loadConfigWith is loadConfig with --set overrides applied on top of the
// file (path may be "" for overrides alone). Relative paths in the file
// are resolved against the file's directory.
func loadConfigWith(path string, sets []string) (*fileConfig, error) {
	var root yaml.Node
	name := path
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, badInput(fmt.Errorf("config: %w", err))
		}
		if err := yaml.Unmarshal(data, &root); err != nil {
			return nil, badInput(yamlError(path, err))
		}
	} else {
		name = "--set"
	}
	if err := applySets(&root, sets); err != nil {
		return nil, badInput(err)
	}
	c := fileConfig{Generation: generationConfig{
		Instructions: pipeline.DefaultInstructionSampling,
		Instances:    pipeline.DefaultInstanceSampling,
		Ensemble:     pipeline.DefaultEnsembleSampling,
	}}
	if root.Kind != 0 {
		if err := decodeStrict(&root, &c); err != nil {
			return nil, badInput(yamlError(name, err))
		}
	}
	if err := c.Pool.Validate(); err != nil {
		return nil, badInput(prefixLines(name+": ", err))
	}
	if path != "" {
		c.resolvePaths(filepath.Dir(path))
	}
	return &c, nil
}

// decodeStrict decodes n into v, rejecting unknown fields. yaml.v3 can be
// strict only when decoding text, so n is encoded and decoded again; the
// line numbers in errors are then mapped back to n's (the file's) lines.
// A field that came from --set has no line and is reported as line 0.
func decodeStrict(n *yaml.Node, v any) error {
	data, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err = dec.Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	var again yaml.Node
	if yaml.Unmarshal(data, &again) != nil {
		return err
	}
	lines := map[int]int{}
	mapLines(&again, n, lines)
	remap := func(m string) string {
		sub := yamlLineRE.FindStringSubmatch(strings.TrimSpace(m))
		if sub == nil {
			return m
		}
		l, _ := strconv.Atoi(sub[1])
		return fmt.Sprintf("line %d: %s", lines[l], sub[2])
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out := &yaml.TypeError{Errors: make([]string, len(te.Errors))}
		for i, m := range te.Errors {
			out.Errors[i] = remap(m)
		}
		return out
	}
	return errors.New(remap(err.Error()))
}

// mapLines records, for every node of the re-encoded tree, the line of the
// corresponding node of the original tree. The trees have the same shape.
func mapLines(enc, orig *yaml.Node, lines map[int]int) {
	if _, ok := lines[enc.Line]; !ok {
		lines[enc.Line] = orig.Line
	}
	for i := range min(len(enc.Content), len(orig.Content)) {
		mapLines(enc.Content[i], orig.Content[i], lines)
	}
}

// applySets applies --set PATH=VALUE overrides to the document root: PATH
// is a dot-separated list of mapping keys (created when missing), VALUE is
// YAML (a scalar, or a flow list or mapping such as [a, b]).
func applySets(root *yaml.Node, sets []string) error {
	for _, kv := range sets {
		path, value, ok := strings.Cut(kv, "=")
		if !ok || path == "" {
			return fmt.Errorf("--set %q: want PATH=VALUE, e.g. --set generation.window=32", kv)
		}
		var val yaml.Node
		if err := yaml.Unmarshal([]byte(value), &val); err != nil {
			return fmt.Errorf("--set %s: %w", path, err)
		}
		var v *yaml.Node
		if val.Kind == yaml.DocumentNode && len(val.Content) == 1 {
			v = val.Content[0]
		} else {
			v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
		}
		if root.Kind == 0 {
			*root = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
		}
		m := root.Content[0]
		keys := strings.Split(path, ".")
		for i, k := range keys {
			if m.Kind != yaml.MappingNode {
				return fmt.Errorf("--set %s: %s is not a mapping", path, strings.Join(keys[:i], "."))
			}
			var next *yaml.Node
			for j := 0; j+1 < len(m.Content); j += 2 {
				if m.Content[j].Value == k {
					next = m.Content[j+1]
					if i == len(keys)-1 {
						m.Content[j+1] = v
					}
					break
				}
			}
			if next == nil {
				next = &yaml.Node{Kind: yaml.MappingNode}
				if i == len(keys)-1 {
					next = v
				}
				m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, next)
			}
			m = next
		}
	}
	return nil
}

// resolvePaths makes the file's relative paths relative to dir.
func (c *fileConfig) resolvePaths(dir string) {
	rel := func(p *string) {
		if *p != "" && *p != "-" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	rel(&c.Seeds)
	rel(&c.RunDir)
	rel(&c.Output.Path)
	rel(&c.Output.Manifest)
	for i := range c.Exclude {
		rel(&c.Exclude[i])
	}
}

var (
	yamlLineRE    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	yamlUnknownRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// yamlError rewrites yaml.v3's "line N: ..." messages as FILE:N: ..., one
// per line, and "field x not found in type T" as unknown field "x".
func yamlError(path string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]string, len(msgs))
	for i, m := range msgs {
		m = strings.TrimSpace(m)
		sub := yamlLineRE.FindStringSubmatch(m)
		if sub == nil {
			out[i] = path + ": " + strings.TrimPrefix(m, "yaml: ")
			continue
		}
		msg := sub[2]
		if u := yamlUnknownRE.FindStringSubmatch(msg); u != nil {
			msg = fmt.Sprintf("unknown field %q", u[1])
		}
		out[i] = fmt.Sprintf("%s:%s: %s", path, sub[1], msg)
	}
	return errors.New(strings.Join(out, "\n"))
}

// prefixLines puts prefix before every line of err's message.
func prefixLines(prefix string, err error) error {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return errors.New(strings.Join(lines, "\n"))
}
