// Package config is ensinstruct's YAML configuration file: its schema,
// strict decoding with errors that name the file and line, PATH=VALUE
// overrides (the command line's --set and the flags that stand for
// fields), and the pipeline.Job a file describes.
//
// Unknown fields are errors. Relative paths written in the file are
// relative to the file's directory; paths given as overrides are relative
// to the working directory. API keys never appear in a file: a model
// names the environment variable that holds its key.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/llm/batch"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"go.yaml.in/yaml/v3"
)

// File is the configuration file. Every field can also be set with an
// override, PATH=VALUE, where PATH is the field's dotted YAML path.
type File struct {
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
	// RunDir holds the response cache, the evidence and, when the output
	// is stdout, the manifest. Default: .ensinstruct/<run identity>.
	RunDir string `yaml:"run_dir"`

	Output     Output          `yaml:"output"`
	Budget     pipeline.Limits `yaml:"budget"`
	Generation Generation      `yaml:"generation"`
	Filters    Filters         `yaml:"filters"`
	// Pull has the Ollama servers pull the pool's models they lack before
	// the run (and, when the file names no models, a suggested pool).
	Pull bool `yaml:"pull"`
	// Progress is how the command line shows a run: auto (a bar on a
	// terminal, log lines otherwise), bar, log or none.
	Progress string `yaml:"progress"`
	// Batch holds the Batch API executor's settings (see docs/batch.md);
	// batch.hosted sends every hosted model through it.
	Batch batch.Settings `yaml:"batch"`

	// name and root are the file (or "--set") and its parsed tree, to
	// point errors about a field at its line.
	name string
	root *yaml.Node
}

// Output says where the records go.
type Output struct {
	Path      string `yaml:"path"`      // "" or "-": stdout
	Format    string `yaml:"format"`    // alpaca, openai, sharegpt or prompt-completion
	Container string `yaml:"container"` // jsonl or parquet; default: parquet for a .parquet path
	Meta      bool   `yaml:"meta"`      // add provenance to every record
	System    string `yaml:"system"`    // a system message for the chat formats
	Join      string `yaml:"join"`      // between instruction and input in a user turn (default "\n")
	Manifest  string `yaml:"manifest"`  // default: next to the output, or in the run directory
	// Card writes a dataset card (PATH.README.md) next to an output file;
	// nil means true. License is the licence its front matter names.
	Card    *bool  `yaml:"card"`
	License string `yaml:"license"`
}

// Generation holds the instruction stage's settings and every stage's
// decoding. Zero values take the pipeline's defaults; fields of a
// sampling section the file does not give keep the defaults.
type Generation struct {
	DemosA       int `yaml:"demos_a"`
	DemosB       int `yaml:"demos_b"`
	MachineDemos int `yaml:"machine_demos"`
	Window       int `yaml:"window"`
	MaxPending   int `yaml:"max_pending"`
	StallLimit   int `yaml:"stall_limit"`
	// Decoding settings per stage.
	Instructions pipeline.Sampling `yaml:"instructions"`
	Instances    pipeline.Sampling `yaml:"instances"`
	Ensemble     pipeline.Sampling `yaml:"ensemble"`
}

// Filters holds the acceptance rules.
type Filters struct {
	NoveltyThreshold *float64 `yaml:"novelty_threshold"`
	MinWords         *int     `yaml:"min_words"`
	MaxWords         *int     `yaml:"max_words"`
	Blacklist        []string `yaml:"blacklist"`
	BadPrefixes      []string `yaml:"bad_prefixes"`
	ASCIIStart       *bool    `yaml:"ascii_start"`
	// Parser is robust (default) or compat (the reference's).
	Parser               string    `yaml:"parser"`
	AllowEmptyInput      bool      `yaml:"allow_empty_input"`
	AllowInstructionEcho bool      `yaml:"allow_instruction_echo"`
	AllowRepetition      bool      `yaml:"allow_repetition"`
	Consensus            Consensus `yaml:"consensus"`
}

// Consensus holds the consensus rule's settings.
type Consensus struct {
	// Select is the rule: reference (default, the paper's), weighted
	// (member weights learned from the run's own agreement) or judge (a
	// model with the judge role grades the candidates).
	Select       string   `yaml:"select"`
	Metric       string   `yaml:"metric"` // rougeL or rouge1
	MinAgreement *float64 `yaml:"min_agreement"`
	// JudgeMode is how the judge grades: rubric (default: a 1–10 grade
	// per candidate) or answer (it answers the task; each candidate is
	// graded by its agreement with that answer).
	JudgeMode string `yaml:"judge_mode"`
}

// Load reads the file at path ("" for none) and applies the overrides on
// top of it, in order (a later one wins). Every problem is an
// *pipeline.InputError reported as FILE:LINE: message (decoding) or
// FILE:LINE: field: message (validation of the model pool).
func Load(path string, overrides []string) (*File, error) {
	var root yaml.Node
	name := path
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, &pipeline.InputError{Err: fmt.Errorf("config: %w", err)}
		}
		if err := yaml.Unmarshal(data, &root); err != nil {
			return nil, &pipeline.InputError{Err: yamlError(path, err)}
		}
		resolvePaths(&root, filepath.Dir(path))
	} else {
		name = "--set"
	}
	if err := applySets(&root, overrides); err != nil {
		return nil, &pipeline.InputError{Err: err}
	}
	f := File{name: name, root: &root, Generation: Generation{
		Instructions: pipeline.DefaultInstructionSampling(),
		Instances:    pipeline.DefaultInstanceSampling(),
		Ensemble:     pipeline.DefaultEnsembleSampling(),
	}}
	if root.Kind != 0 {
		if err := decodeStrict(&root, &f); err != nil {
			return nil, &pipeline.InputError{Err: yamlError(name, err)}
		}
	}
	if err := f.Pool.Validate(); err != nil {
		return nil, f.Locate(&pipeline.InputError{Err: err}, nil)
	}
	return &f, nil
}

// pathFields are the fields that hold file names, as YAML paths; "*"
// stands for every element of a list.
var pathFields = [][]string{{"seeds"}, {"run_dir"}, {"output", "path"}, {"output", "manifest"}, {"exclude", "*"}}

// resolvePaths makes the file's relative paths relative to dir. It runs
// before overrides are applied, so that only the file's own paths move.
func resolvePaths(root *yaml.Node, dir string) {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return
	}
	for _, p := range pathFields {
		for _, n := range lookup(root.Content[0], p) {
			if n.Kind == yaml.ScalarNode && n.Value != "" && n.Value != "-" && !filepath.IsAbs(n.Value) {
				n.Value = filepath.Join(dir, n.Value)
			}
		}
	}
}

// lookup returns the nodes at path under n.
func lookup(n *yaml.Node, path []string) []*yaml.Node {
	if len(path) == 0 {
		return []*yaml.Node{n}
	}
	if path[0] == "*" {
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		var out []*yaml.Node
		for _, c := range n.Content {
			out = append(out, lookup(c, path[1:])...)
		}
		return out
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == path[0] {
			return lookup(n.Content[i+1], path[1:])
		}
	}
	return nil
}

// Locate rewrites the field errors inside an *pipeline.InputError so
// that each names where its value came from: the override's name when
// override reports one for the field's path (a command-line flag, say),
// else FILE:LINE of the field in the file (or of its nearest enclosing
// key, for a missing field). Other errors pass through unchanged.
func (f *File) Locate(err error, override func(field string) (string, bool)) error {
	var ie *pipeline.InputError
	if err == nil || !errors.As(err, &ie) {
		return err
	}
	var lines []string
	for _, e := range flatten(ie.Err) {
		var fe *llm.FieldError
		if !errors.As(e, &fe) {
			lines = append(lines, e.Error())
			continue
		}
		if override != nil {
			if name, ok := override(fe.Field()); ok {
				lines = append(lines, name+": "+fe.Msg)
				continue
			}
		}
		line := 0
		if f.root != nil && f.root.Kind == yaml.DocumentNode {
			line = fieldLine(f.root.Content[0], fe.Path)
		}
		if line > 0 {
			lines = append(lines, fmt.Sprintf("%s:%d: %s", f.name, line, fe))
		} else {
			lines = append(lines, fe.Error())
		}
	}
	return &pipeline.InputError{Err: errors.New(strings.Join(lines, "\n"))}
}

// fieldLine returns the line of the key at path in the mapping n, or of
// the deepest key on the path that exists (0 for a key an override added).
func fieldLine(n *yaml.Node, path []string) int {
	line := 0
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line, next = n.Content[i].Line, n.Content[i+1]
				break
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

// flatten lists the errors joined in err (errors.Join), depth first.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
