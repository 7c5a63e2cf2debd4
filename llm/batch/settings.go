package batch

import (
	"errors"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
)

// The Batch API's limits and the executor's defaults.
const (
	// MaxFileRequests is the most requests one input file may hold.
	MaxFileRequests = 50_000
	// MaxFileBytes is the largest input file (200 MB).
	MaxFileBytes = 200_000_000
	// CompletionWindow is the only completion window the API offers.
	CompletionWindow = "24h"

	DefaultFlushSize    = 10_000
	DefaultFlushIdle    = time.Minute
	DefaultSettle       = 2 * time.Second
	DefaultPollInterval = 30 * time.Second
)

// Settings are the batch executor's knobs: the batch section of the
// configuration file. Zero fields take the defaults; none of them changes
// what a call is, so none is part of the run identity (the window is: see
// pipeline.Options.Window).
type Settings struct {
	// Hosted sends the calls of every OpenAI-compatible model whose
	// server is not local through the Batch API, as if each set batch
	// (the command line's --batch).
	Hosted bool `yaml:"hosted" json:"hosted,omitempty"`
	// FlushSize submits a model's queue once it holds this many
	// requests (default 10,000).
	FlushSize int `yaml:"flush_size" json:"flush_size,omitempty"`
	// FlushIdle submits a model's queue when no request joined it for
	// this long (default 1m).
	FlushIdle time.Duration `yaml:"flush_idle" json:"flush_idle,omitempty"`
	// Settle is how long the run must have made no progress, with no
	// other call in flight, before it counts as blocked on the queues,
	// which are then submitted (default 2s).
	Settle time.Duration `yaml:"settle" json:"settle,omitempty"`
	// PollInterval is how often a live job's status is read (default
	// 30s).
	PollInterval time.Duration `yaml:"poll_interval" json:"poll_interval,omitempty"`
	// MaxFileRequests and MaxFileBytes split a submission into files of
	// at most this many requests and bytes (default and maximum: the
	// API's 50,000 and 200 MB).
	MaxFileRequests int   `yaml:"max_file_requests" json:"max_file_requests,omitempty"`
	MaxFileBytes    int64 `yaml:"max_file_bytes" json:"max_file_bytes,omitempty"`
}

// Validate checks the settings. Every problem is an *llm.FieldError under
// path (the section's place in the configuration, e.g. "batch").
func (s Settings) Validate(path ...string) error {
	var errs []error
	bad := func(field, msg string) {
		errs = append(errs, llm.FieldErrorf(append(append([]string(nil), path...), field), "%s", msg))
	}
	if s.FlushSize < 0 {
		bad("flush_size", "must not be negative")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"flush_idle", s.FlushIdle}, {"settle", s.Settle}, {"poll_interval", s.PollInterval}} {
		if d.v < 0 {
			bad(d.name, "must not be negative")
		}
	}
	if s.MaxFileRequests < 0 || s.MaxFileRequests > MaxFileRequests {
		bad("max_file_requests", "must be between 0 (the API's limit) and 50000")
	}
	if s.MaxFileBytes < 0 || s.MaxFileBytes > MaxFileBytes {
		bad("max_file_bytes", "must be between 0 (the API's limit) and 200000000")
	}
	return errors.Join(errs...)
}

func (s Settings) withDefaults() Settings {
	if s.FlushSize == 0 {
		s.FlushSize = DefaultFlushSize
	}
	if s.FlushIdle == 0 {
		s.FlushIdle = DefaultFlushIdle
	}
	if s.Settle == 0 {
		s.Settle = DefaultSettle
	}
	if s.PollInterval == 0 {
		s.PollInterval = DefaultPollInterval
	}
	if s.MaxFileRequests == 0 {
		s.MaxFileRequests = MaxFileRequests
	}
	if s.MaxFileBytes == 0 {
		s.MaxFileBytes = MaxFileBytes
	}
	return s
}

// Apply sets Batch on every hosted model of cfg when s.Hosted is set (see
// llm.ModelConfig.Hosted), and returns cfg; the models are copied, not
// changed in place.
func (s Settings) Apply(cfg llm.Config) llm.Config {
	if !s.Hosted {
		return cfg
	}
	models := make(llm.Models, len(cfg.Models))
	copy(models, cfg.Models)
	for i := range models {
		if models[i].Hosted() {
			models[i].Batch = true
		}
	}
	cfg.Models = models
	return cfg
}
