package pipeline

import (
	"errors"
	"time"

	"github.com/ensinstruct/ensinstruct/filter"

	"github.com/ensinstruct/ensinstruct/llm"
)

// Run statuses, as the manifest records them.
const (
	StatusComplete    = "complete"    // every type reached its target
	StatusBudget      = "budget"      // stopped cleanly: the budget was spent
	StatusStalled     = "stalled"     // a type stopped making progress
	StatusInterrupted = "interrupted" // cancelled (SIGINT/SIGTERM)
	StatusFailed      = "failed"      // an error ended the run
	StatusPending     = "pending"     // detached while calls are pending in batch jobs
)

// Manifest describes a run: what was asked, what it used, what it produced
// and what it cost. It is written as JSON next to the output. It holds no
// secrets: models are listed without keys or headers, endpoints without
// credentials.
type Manifest struct {
	Version    string    `json:"version"`
	ConfigHash string    `json:"config_hash"`
	Seed       int64     `json:"seed"`
	Status     string    `json:"status"`
	Error      string    `json:"error,omitempty"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
	Seconds    float64   `json:"seconds"`

	Seeds  ManifestSeeds   `json:"seeds"`
	Models []llm.ModelInfo `json:"models"`
	// Discovered lists the models the local server had when no models
	// were named and the pool was chosen from them.
	Discovered []llm.LocalModel `json:"discovered,omitempty"`
	// NoveltyThreshold is the resolved threshold of the novelty check.
	NoveltyThreshold float64 `json:"novelty_threshold"`
	// ConsensusRule is the rule that decided the examples: reference,
	// weighted or judge.
	ConsensusRule string `json:"consensus_rule"`
	// JudgeMode is how the judge graded (rubric or answer); absent when
	// no judge ran.
	JudgeMode string `json:"judge_mode,omitempty"`
	// Window is the resolved number of instruction requests in flight per
	// type (it follows the capacity of the instruction endpoints).
	Window int `json:"window"`
	// Limits is the run's budget (absent: none).
	Limits Limits                    `json:"limits"`
	Output ManifestOutput            `json:"output"`
	RunDir string                    `json:"run_dir"`
	Counts map[string]Counts         `json:"counts"`
	Calls  map[string]llm.ModelStats `json:"calls"`
	// Endpoints is the state of each endpoint's concurrency limit at the
	// end (for max_concurrent: auto, the limit it settled at and its
	// backoffs).
	Endpoints []llm.EndpointStats `json:"endpoints,omitempty"`
	Totals    Totals              `json:"totals"`
	// Reliability says, for each ensemble member (and the examples' own
	// outputs), how often it won, answered empty or failed, and its mean
	// agreement with each other member.
	Reliability *filter.ReliabilitySummary `json:"reliability,omitempty"`
	// Timeline samples the run's progress: seconds since the start,
	// records kept, calls made and their cost.
	Timeline []TimePoint `json:"timeline"`
	// Batches lists the run directory's batch jobs, earlier invocations'
	// included (absent: none).
	Batches []BatchInfo `json:"batches,omitempty"`
}

// BatchInfo describes one batch job of a provider's Batch API.
type BatchInfo struct {
	// ID is the provider's batch ID ("" until it is created); Local is
	// the run directory's own name for the job.
	ID    string `json:"id"`
	Local string `json:"local"`
	Model string `json:"model"`
	// Status is the provider's (validating, in_progress, finalizing,
	// completed, failed, expired, cancelling, cancelled), or uploading
	// before the job exists and abandoned for one never created.
	Status string `json:"status"`
	// Live says the job may still change, or its results are not all
	// read yet.
	Live        bool   `json:"live"`
	InputFileID string `json:"input_file_id,omitempty"`
	// Requests is the number of requests in the job; Completed and
	// Failed are the provider's counts so far.
	Requests  int `json:"requests"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
	// CostUSD is the cost of the job's results collected so far, at the
	// batch price.
	CostUSD float64 `json:"cost_usd"`
	// Created is when the job was recorded.
	Created time.Time `json:"created"`
}

// TimePoint is one sample of a run's progress.
type TimePoint struct {
	Seconds float64 `json:"seconds"`
	Kept    int     `json:"kept"`
	Calls   int64   `json:"calls"`
	CostUSD float64 `json:"cost_usd"`
}

// ManifestSeeds identifies the seed set a run started from.
type ManifestSeeds struct {
	Source string `json:"source"` // a file name, or "default" for the embedded set
	SHA256 string `json:"sha256"`
	Tasks  int    `json:"tasks"`
	TypeA  int    `json:"type_a"`
	TypeB  int    `json:"type_b"`
}

// ManifestOutput says where the records went.
type ManifestOutput struct {
	Path      string `json:"path"` // "-" for stdout
	Format    string `json:"format"`
	Container string `json:"container"` // jsonl or parquet
	Meta      bool   `json:"meta"`
	Records   int    `json:"records"`
}

// Totals sum the model statistics over every model.
type Totals struct {
	Calls            int64   `json:"calls"`
	CacheHits        int64   `json:"cache_hits"`
	Retries          int64   `json:"retries"`
	Failures         int64   `json:"failures"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	CostUSD          float64 `json:"cost_usd"`
}

// SumStats adds up per-model statistics.
func SumStats(stats map[string]llm.ModelStats) Totals {
	var t Totals
	for _, s := range stats {
		t.Calls += s.Calls
		t.CacheHits += s.CacheHits
		t.Retries += s.Retries
		t.Failures += s.Failures
		t.PromptTokens += s.PromptTokens
		t.CompletionTokens += s.CompletionTokens
		t.CostUSD += s.CostUSD
	}
	return t
}

// StatusOf derives a run's status from its error and its types' counts.
func StatusOf(err error, interrupted bool, counts map[string]Counts) string {
	switch {
	case interrupted:
		return StatusInterrupted
	case errors.Is(err, ErrDetached):
		return StatusPending
	case err != nil:
		return StatusFailed
	}
	status := StatusComplete
	for _, c := range counts {
		switch c.Stop {
		case StopStalled:
			return StatusStalled
		case StopBudget:
			status = StatusBudget
		}
	}
	return status
}
