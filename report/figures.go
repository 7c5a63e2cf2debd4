package report

import "github.com/ensinstruct/ensinstruct/llm"

// Figures are everything a report shows, computed from its files. The JSON
// form is stable (the package's golden tests compare it); a Figures value
// is plain data, safe to share once built.
type Figures struct {
	// Title names the report: the run directory or the dataset file.
	Title string `json:"title"`
	// Inputs are the files read.
	Inputs []string `json:"inputs"`
	// Run summarizes the manifest; nil without one.
	Run *RunSummary `json:"run"`
	// Funnels hold one funnel per type ("A", "B", or "all" for a dataset
	// without types), in type order.
	Funnels []Funnel `json:"funnels"`
	// Novelty is the distribution of meta.novelty_max.
	Novelty Novelty `json:"novelty"`
	// Lengths are the word-count distributions of the kept records'
	// instructions, inputs and outputs, in that order.
	Lengths []Lengths `json:"lengths"`
	// Verbs are the kept instructions' leading verbs.
	Verbs Verbs `json:"verbs"`
	// Members are the consensus candidates' sources: the instance model
	// (candidate 0) and the ensemble members.
	Members []Member `json:"members"`
	// Agreement is the mean pairwise agreement between members.
	Agreement Agreement `json:"agreement"`
	// Calls are the manifest's per-model statistics, by model name, and
	// Totals their sum.
	Calls  []ModelCalls `json:"calls"`
	Totals *ModelCalls  `json:"totals"`
	// Timeline samples the run's progress (from the manifest).
	Timeline []TimePoint `json:"timeline"`
	// Examples are the sampled kept and rejected examples, kept first,
	// then by reason, each group in file order.
	Examples []Example `json:"examples"`
	// Groups counts the examples of each group (kept, or a rejection
	// reason) in the files, against how many the sample shows.
	Groups []Group `json:"groups"`
	// Warnings note what the files lack or where they disagree.
	Warnings []string `json:"warnings"`
}

// RunSummary is what the report shows of a run manifest.
type RunSummary struct {
	Version          string   `json:"version"`
	ConfigHash       string   `json:"config_hash"`
	Seed             int64    `json:"seed"`
	Status           string   `json:"status"`
	Error            string   `json:"error,omitempty"`
	Started          string   `json:"started"`
	Seconds          float64  `json:"seconds"`
	Seeds            string   `json:"seeds"`
	Models           []string `json:"models"`
	NoveltyThreshold *float64 `json:"novelty_threshold"`
	Records          int      `json:"records"`
	Output           string   `json:"output"`
}

// Funnel is one type's path from the first stage to the kept records.
type Funnel struct {
	Type   string  `json:"type"`
	Stages []Stage `json:"stages"`
}

// Stage is one step of a funnel: how many candidates reached it, and what
// was lost since the stage before.
type Stage struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	// Drops are the reasons candidates were lost on the way from the
	// previous stage, most frequent first.
	Drops []Count `json:"drops,omitempty"`
	// Unfinished counts candidates of the previous stage neither dropped
	// nor here: work not done when the run stopped.
	Unfinished int `json:"unfinished,omitempty"`
}

// Count is a named number.
type Count struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// NoveltyBins is the number of equal-width bins of [0, 1] in the novelty
// histogram.
const NoveltyBins = 20

// Novelty is the histogram of the highest Rouge-L F of each instruction
// against the seeds and earlier instructions.
type Novelty struct {
	// Accepted counts, per bin, the instructions that passed the novelty
	// check; Rejected those dropped as not novel.
	Accepted []int `json:"accepted"`
	Rejected []int `json:"rejected"`
	// Threshold is the run's novelty threshold, when known.
	Threshold *float64 `json:"threshold"`
	// Mean is the accepted instructions' mean score (0 without any).
	Mean float64 `json:"mean"`
}

// lengthEdges are the lower bounds, in words, of the length histograms'
// bins; the last bin is open.
var lengthEdges = [...]int{0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}

// Lengths is the distribution of one field's length in words.
type Lengths struct {
	Field  string  `json:"field"`
	Bins   []Count `json:"bins"`
	N      int     `json:"n"`
	Mean   float64 `json:"mean"`
	Median int     `json:"median"`
	P90    int     `json:"p90"`
	Max    int     `json:"max"`
}

// TopVerbs is how many leading verbs the report ranks.
const TopVerbs = 20

// Verbs summarizes the leading verbs of the kept instructions.
type Verbs struct {
	// Top are the TopVerbs most frequent verbs (ties by name).
	Top []Count `json:"top"`
	// Instructions is the number of instructions; Distinct the number of
	// distinct verbs found; Question and None count the pseudo-verbs.
	Instructions int `json:"instructions"`
	Distinct     int `json:"distinct"`
	Question     int `json:"question"`
	None         int `json:"none"`
	// TopShare is the share of all instructions that open with a verb of
	// Top.
	TopShare float64 `json:"top_share"`
}

// Member is one source of consensus candidates.
type Member struct {
	// Name is the model name; the instance model's original outputs
	// (candidate 0) are named "NAME (instance)".
	Name string `json:"name"`
	// Votes counts the consensus decisions the member took part in, Wins
	// those whose kept output was its candidate.
	Votes   int     `json:"votes"`
	Wins    int     `json:"wins"`
	WinRate float64 `json:"win_rate"`
	// Seen counts the candidates whose text the files hold (the rejected
	// ones, and kept ones that record their candidates), Empty those that
	// were empty.
	Seen      int     `json:"seen"`
	Empty     int     `json:"empty"`
	EmptyRate float64 `json:"empty_rate"`
	// Calls and Failures are the model's calls and failed calls from the
	// manifest (0 without one), and FailureRate their ratio.
	Calls       int64   `json:"calls"`
	Failures    int64   `json:"failures"`
	FailureRate float64 `json:"failure_rate"`
}

// Agreement is the matrix of mean pairwise agreement between members, in
// Members order. Mean[i][j] is nil where the two never met; N[i][j] counts
// the decisions where they did. The diagonal is nil.
type Agreement struct {
	Mean [][]*float64 `json:"mean"`
	N    [][]int      `json:"n"`
}

// ModelCalls are one model's call statistics from the manifest, or
// their totals (without a name).
type ModelCalls struct {
	Name string `json:"name,omitempty"`
	llm.ModelStats
}

// TimePoint is one sample of a run's progress.
type TimePoint struct {
	Seconds float64 `json:"seconds"`
	Kept    int     `json:"kept"`
	Calls   int64   `json:"calls"`
	CostUSD float64 `json:"cost_usd"`
}

// Example is one sampled kept or rejected example.
type Example struct {
	// Group is "kept" or the rejection reason ("consensus/dropped-low-agreement").
	Group string `json:"group"`
	// Where locates the line ("kept.jsonl:12"), and Source the record's
	// own source (filter's "data.jsonl:4"), when known.
	Where       string   `json:"where"`
	Source      string   `json:"source,omitempty"`
	Type        string   `json:"type,omitempty"`
	Instruction Text     `json:"instruction"`
	Input       Text     `json:"input"`
	Output      Text     `json:"output"`
	Raw         Text     `json:"raw"`
	Error       Text     `json:"error"`
	NoveltyMax  *float64 `json:"novelty_max"`
	// Decision is the consensus reason ("exact-match"), MinPair its
	// lowest pairwise score, and Candidates every candidate compared.
	Decision   string      `json:"decision,omitempty"`
	MinPair    *float64    `json:"min_pair"`
	Candidates []Candidate `json:"candidates,omitempty"`
}

// Candidate is one output a consensus decision compared.
type Candidate struct {
	// Name is the member the candidate came from (see Member.Name).
	Name string `json:"name"`
	// Text is the candidate; Recorded is false when the file does not
	// hold it (kept records keep only the winning output).
	Text     Text `json:"text"`
	Recorded bool `json:"recorded"`
	// Score is the candidate's summed agreement with the others, and
	// Pairwise its agreement with each other candidate, in order (its own
	// place is nil).
	Score    float64    `json:"score"`
	Pairwise []*float64 `json:"pairwise"`
	Picked   bool       `json:"picked"`
}

// Text is a string cut to fit the report's size bound: S is its start and
// Cut the number of bytes left out.
type Text struct {
	S   string `json:"s"`
	Cut int    `json:"cut,omitempty"`
}

// Group counts one group's examples in the files and in the sample.
type Group struct {
	Name   string `json:"name"`
	Total  int    `json:"total"`
	Shown  int    `json:"shown"`
	IsKept bool   `json:"kept"`
}
