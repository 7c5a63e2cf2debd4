package seeds

import (
	"bytes"
	_ "embed"
)

//go:embed default_tasks.jsonl
var defaultJSONL []byte

// DefaultFile is the name problems in the embedded seed set are reported
// under.
const DefaultFile = "default_tasks.jsonl"

// Default returns the seed set embedded in the binary: tasks written for
// ensinstruct, covering classification, extraction, rewriting, summarization,
// math, code, reasoning, planning, creative writing, data conversion and
// reading comprehension. Each call returns a fresh copy.
func Default() ([]Task, error) {
	return Load(bytes.NewReader(defaultJSONL), DefaultFile)
}

// DefaultJSONL returns the embedded seed set as it is stored: one JSON task
// per line, ready to be edited and passed back with --seeds.
func DefaultJSONL() []byte {
	return bytes.Clone(defaultJSONL)
}
