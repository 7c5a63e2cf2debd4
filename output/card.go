package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// CardSuffix is appended to a data file's path to name its dataset card.
const CardSuffix = ".README.md"

// CardPath returns the path of the dataset card of the data file at path.
func CardPath(path string) string { return path + CardSuffix }

// Card is what a dataset card says about the data file it sits next to:
// how the data is laid out and how the run that made it went. It is a
// plain struct so that a caller fills it from a run manifest or from
// filter statistics; the zero value renders a card with only what is
// known (empty sections are left out).
type Card struct {
	// DataFile is the data file's path; the card's configs name its base
	// name, since the card is meant to sit next to it (as README.md on
	// the Hugging Face Hub).
	DataFile  string
	Container Container
	// Options are the options the file was written with.
	Options Options
	// Rows is the number of records in the file; it sets the size
	// category.
	Rows int
	// Command is the command that wrote the file: "generate" or
	// "filter".
	Command string
	// License is the licence identifier for the front matter; "" writes
	// "unknown" for the owner of the data to replace.
	License string
	// Version, ConfigHash, Status and Seed identify the run.
	Version    string
	ConfigHash string
	Status     string
	Seed       *int64
	// Models are the models of the run and their roles. Endpoints are
	// not part of a card: they can name private hosts.
	Models []CardModel
	// Types are generate's counts, one entry per instruction type.
	Types []CardTypeCounts
	// Filter are filter's counts.
	Filter *CardFilterCounts
	// Thresholds are the settings that decided what was kept, in the
	// order to show them ("novelty threshold", "0.7").
	Thresholds []CardSetting
	// Totals are the run's model calls, tokens and cost.
	Totals *CardTotals
}

// CardModel is one model of the run.
type CardModel struct {
	Name    string
	Backend string
	Model   string
	Roles   []string
	Weight  float64
	Style   string
}

// CardTypeCounts are generate's counts for one instruction type: how many
// requests each stage made and how many candidates survived it.
type CardTypeCounts struct {
	Type                 string
	Target               int
	InstructionRequests  int
	InstructionsAccepted int
	InstanceRequests     int
	InstancesValid       int
	EnsembleCalls        int
	Decided              int
	Kept                 int
	// Dropped counts drops by "stage/reason".
	Dropped map[string]int
}

// CardFilterCounts are filter's counts.
type CardFilterCounts struct {
	Read          int
	Invalid       int
	Kept          int
	EnsembleCalls int
	// Dropped counts drops by "stage/reason".
	Dropped map[string]int
}

// CardSetting is one named setting and its value as shown.
type CardSetting struct {
	Name  string
	Value string
}

// CardTotals are the model calls of a run.
type CardTotals struct {
	Calls            int64
	CacheHits        int64
	PromptTokens     int64
	CompletionTokens int64
	CostUSD          float64
}

// WriteCard writes c as a dataset card to CardPath(c.DataFile),
// atomically.
func WriteCard(c Card) error {
	return WriteFileAtomic(CardPath(c.DataFile), c.Markdown())
}

// SizeCategory returns the Hugging Face size category of n records.
func SizeCategory(n int) string {
	bounds := []struct {
		below int
		name  string
	}{{1e3, "n<1K"}, {1e4, "1K<n<10K"}, {1e5, "10K<n<100K"}, {1e6, "100K<n<1M"}, {1e7, "1M<n<10M"}, {1e8, "10M<n<100M"}, {1e9, "100M<n<1B"}}
	for _, b := range bounds {
		if n < b.below {
			return b.name
		}
	}
	return "n>1B"
}

// Markdown renders the card: YAML front matter in the Hugging Face
// dataset-card form (licence, task category, size category, a configs
// entry pointing to the data file), then a body describing the data and
// the run. The same Card always renders the same bytes.
func (c Card) Markdown() []byte {
	var b bytes.Buffer
	file := filepath.Base(c.DataFile)
	license := c.License
	if license == "" {
		license = "unknown"
	}
	fmt.Fprintf(&b, "---\n")
	fmt.Fprintf(&b, "license: %s # replace with the licence of this data\n", yamlString(license))
	fmt.Fprintf(&b, "pretty_name: %s\n", yamlString(strings.TrimSuffix(file, filepath.Ext(file))))
	fmt.Fprintf(&b, "task_categories:\n- text-generation\n")
	fmt.Fprintf(&b, "tags:\n- synthetic\n- instruction-tuning\n- ensemble-instruct\n")
	fmt.Fprintf(&b, "size_categories:\n- %s\n", SizeCategory(c.Rows))
	fmt.Fprintf(&b, "configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: %s\n", yamlString(file))
	fmt.Fprintf(&b, "---\n\n")

	fmt.Fprintf(&b, "# %s\n\n", mdText(strings.TrimSuffix(file, filepath.Ext(file))))
	cmd := "ensinstruct"
	if c.Command != "" {
		cmd += " " + c.Command
	}
	fmt.Fprintf(&b, "Instruction-tuning data written by `%s`", cmd)
	if c.Version != "" {
		fmt.Fprintf(&b, " (version %s)", mdText(c.Version))
	}
	if c.Command == "filter" {
		b.WriteString(". The records were read from an existing dataset and kept where they passed the filters counted below.\n\n")
	} else {
		b.WriteString(". Instructions and instances come from the generating models, and an example was kept only where the ensemble models' outputs agreed with it (Ensemble-Instruct, Lee et al., 2023).\n\n")
	}

	c.dataSection(&b, file)
	c.runSection(&b)
	b.WriteString("## Licence and use\n\n")
	b.WriteString("The records are model outputs. Their licence is the owner's to state in the front matter above, within the terms of use of the models listed here.\n")
	return b.Bytes()
}

func (c Card) dataSection(b *bytes.Buffer, file string) {
	o := c.Options
	container := c.Container
	if container == "" {
		container = ContainerJSONL
	}
	b.WriteString("## Data\n\n")
	fmt.Fprintf(b, "- file: `%s` (%s), %d records\n", mdCode(file), container, c.Rows)
	fmt.Fprintf(b, "- format: `%s` — %s\n", o.format(), formatColumns(o.format()))
	if o.format().chat() {
		join := o.Join
		if join == "" {
			join = DefaultJoin
		}
		fmt.Fprintf(b, "- user turn: the instruction, then the input after `%s`\n", mdCode(strconv.Quote(join)))
		if o.System != "" {
			fmt.Fprintf(b, "- system message: `%s`\n", mdCode(strconv.Quote(o.System)))
		} else {
			b.WriteString("- system message: none\n")
		}
	}
	if o.Meta {
		b.WriteString("- `meta`: provenance of each record (id, type, models, consensus scores, novelty), every key on every line, null where absent\n")
	}
	loader := "json"
	if container == ContainerParquet {
		loader = "parquet"
	}
	fmt.Fprintf(b, "\n```python\nfrom datasets import load_dataset\nds = load_dataset(%q, data_files=%q, split=\"train\")\n```\n\n", loader, file)
}

func formatColumns(f Format) string {
	switch f {
	case FormatOpenAI:
		return "`messages`: a list of {role, content}: system (optional), user, assistant"
	case FormatShareGPT:
		return "`conversations`: a list of {from, value}: system (optional), human, gpt"
	case FormatPromptCompletion:
		return "`prompt`: a list of {role, content} (system optional, user); `completion`: one assistant message"
	}
	return "`instruction`, `input` (may be empty), `output`"
}

func (c Card) runSection(b *bytes.Buffer) {
	var run []CardSetting
	add := func(name, value string) {
		if value != "" {
			run = append(run, CardSetting{name, value})
		}
	}
	add("status", c.Status)
	if c.Seed != nil {
		add("seed", strconv.FormatInt(*c.Seed, 10))
	}
	add("config hash", c.ConfigHash)
	add("version", c.Version)
	if len(run) == 0 && len(c.Models) == 0 && len(c.Types) == 0 && c.Filter == nil && len(c.Thresholds) == 0 && c.Totals == nil {
		return
	}
	b.WriteString("## How it was made\n\n")
	if len(run) > 0 {
		table(b, []string{"run", ""}, settingRows(run))
	}
	if len(c.Models) > 0 {
		rows := make([][]string, len(c.Models))
		for i, m := range c.Models {
			rows[i] = []string{m.Name, m.Backend, m.Model, strings.Join(m.Roles, ", "), strconv.FormatFloat(m.Weight, 'g', -1, 64), m.Style}
		}
		b.WriteString("### Models\n\n")
		table(b, []string{"name", "backend", "model", "roles", "weight", "style"}, rows)
	}
	if len(c.Types) > 0 {
		c.typeTables(b)
	}
	if f := c.Filter; f != nil {
		b.WriteString("### Counts\n\n")
		table(b, []string{"", "records"}, [][]string{
			{"read", itoa(f.Read)}, {"invalid lines skipped", itoa(f.Invalid)}, {"kept", itoa(f.Kept)}, {"ensemble calls", itoa(f.EnsembleCalls)},
		})
		dropTable(b, []string{"records"}, []map[string]int{f.Dropped})
	}
	if len(c.Thresholds) > 0 {
		b.WriteString("### Thresholds\n\n")
		table(b, []string{"setting", "value"}, settingRows(c.Thresholds))
	}
	if t := c.Totals; t != nil {
		b.WriteString("### Model calls and cost\n\n")
		table(b, []string{"", ""}, [][]string{
			{"calls", strconv.FormatInt(t.Calls, 10)}, {"cache hits", strconv.FormatInt(t.CacheHits, 10)},
			{"prompt tokens", strconv.FormatInt(t.PromptTokens, 10)}, {"completion tokens", strconv.FormatInt(t.CompletionTokens, 10)},
			{"cost (USD)", strconv.FormatFloat(t.CostUSD, 'f', 4, 64)},
		})
	}
}

func (c Card) typeTables(b *bytes.Buffer) {
	head := []string{"stage"}
	drops := make([]map[string]int, len(c.Types))
	for i, t := range c.Types {
		head = append(head, "type "+t.Type)
		drops[i] = t.Dropped
	}
	stages := []struct {
		name string
		n    func(CardTypeCounts) int
	}{
		{"target", func(t CardTypeCounts) int { return t.Target }},
		{"instruction requests", func(t CardTypeCounts) int { return t.InstructionRequests }},
		{"instructions accepted", func(t CardTypeCounts) int { return t.InstructionsAccepted }},
		{"instance requests", func(t CardTypeCounts) int { return t.InstanceRequests }},
		{"valid instances", func(t CardTypeCounts) int { return t.InstancesValid }},
		{"ensemble calls", func(t CardTypeCounts) int { return t.EnsembleCalls }},
		{"decided", func(t CardTypeCounts) int { return t.Decided }},
		{"kept", func(t CardTypeCounts) int { return t.Kept }},
	}
	rows := make([][]string, len(stages))
	for i, s := range stages {
		rows[i] = []string{s.name}
		for _, t := range c.Types {
			rows[i] = append(rows[i], itoa(s.n(t)))
		}
	}
	b.WriteString("### Counts per stage\n\n")
	table(b, head, rows)
	dropTable(b, head[1:], drops)
}

// dropTable writes one row per drop reason and one column per count map.
func dropTable(b *bytes.Buffer, cols []string, drops []map[string]int) {
	var reasons []string
	for _, d := range drops {
		for r := range d {
			if !slices.Contains(reasons, r) {
				reasons = append(reasons, r)
			}
		}
	}
	if len(reasons) == 0 {
		return
	}
	slices.Sort(reasons)
	rows := make([][]string, len(reasons))
	for i, r := range reasons {
		rows[i] = []string{r}
		for _, d := range drops {
			rows[i] = append(rows[i], itoa(d[r]))
		}
	}
	b.WriteString("### Drops by reason\n\n")
	table(b, append([]string{"stage/reason"}, cols...), rows)
}

func settingRows(s []CardSetting) [][]string {
	rows := make([][]string, len(s))
	for i, v := range s {
		rows[i] = []string{v.Name, v.Value}
	}
	return rows
}

// table writes a Markdown table.
func table(b *bytes.Buffer, head []string, rows [][]string) {
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + mdText(c) + " |")
		}
		b.WriteString("\n")
	}
	line(head)
	b.WriteString("|" + strings.Repeat("---|", len(head)) + "\n")
	for _, r := range rows {
		line(r)
	}
	b.WriteString("\n")
}

// mdText makes s safe in a Markdown table cell or heading: one line, no
// unescaped pipe.
func mdText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// mdCode makes s safe inside a Markdown code span outside a table: one
// line, no backquote.
func mdCode(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), " "), "`", "'")
}

// yamlString quotes s as a YAML double-quoted scalar (a JSON string is
// one).
func yamlString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

func itoa(n int) string { return strconv.Itoa(n) }
