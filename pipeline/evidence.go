package pipeline

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ensinstruct/ensinstruct/output"
)

// Evidence receives the fate of every candidate of a run: each kept
// record with its full provenance, and each dropped candidate with its
// stage, reason and scores. Calls come from one goroutine, in an order
// fixed by the configuration and the cached responses: each type's
// candidates in the order their instruction requests were made, placed
// before the kept record that follows them, and the types interleaved as
// the records are. So the same run, or a resumed one, reports the same
// sequence.
type Evidence interface {
	// Kept receives a kept record and the candidate outputs its consensus
	// compared (candidate 0 is the instance's own output).
	Kept(rec output.Record, candidates []string) error
	Rejected(output.Rejected) error
}

// Names of the evidence files in a run directory.
const (
	KeptFile     = "kept.jsonl"
	RejectedFile = "rejected.jsonl"
)

// evidenceFiles writes a run's evidence into its run directory: every
// kept record as an alpaca JSONL line with its full provenance (whatever
// format the output has) and the candidates its vote compared, and every
// rejection as one JSON line. Each line is
// flushed as it is written, so that a report of a run in progress reads
// whole lines. The files are rewritten from the start by every run: a
// resumed run replays the cached calls and writes the same bytes.
type evidenceFiles struct {
	kept     *os.File
	rejected *os.File
	keptW    *bufio.Writer
	keptEnc  *json.Encoder
	rejW     *bufio.Writer
	rejEnc   *json.Encoder
	closed   bool
}

func createEvidence(dir string) (*evidenceFiles, error) {
	kept, err := os.Create(filepath.Join(dir, KeptFile))
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	rejected, err := os.Create(filepath.Join(dir, RejectedFile))
	if err != nil {
		kept.Close()
		return nil, fmt.Errorf("evidence: %w", err)
	}
	e := &evidenceFiles{kept: kept, rejected: rejected,
		keptW: bufio.NewWriterSize(kept, 64<<10), rejW: bufio.NewWriterSize(rejected, 64<<10)}
	e.keptEnc = json.NewEncoder(e.keptW)
	e.keptEnc.SetEscapeHTML(false)
	e.rejEnc = json.NewEncoder(e.rejW)
	e.rejEnc.SetEscapeHTML(false)
	return e, nil
}

// Kept writes a kept record with its provenance and candidates.
func (e *evidenceFiles) Kept(r output.Record, candidates []string) error {
	k := output.Kept{Instruction: r.Instruction, Input: r.Input, Output: r.Output, Meta: r.Meta, Candidates: candidates}
	if err := k.Encode(e.keptEnc); err != nil {
		return err
	}
	return e.keptW.Flush()
}

// Rejected writes a rejection.
func (e *evidenceFiles) Rejected(r output.Rejected) error {
	if err := e.rejEnc.Encode(r); err != nil {
		return err
	}
	return e.rejW.Flush()
}

// Close closes both files; it may be called more than once.
func (e *evidenceFiles) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	return errors.Join(e.keptW.Flush(), e.rejW.Flush(), e.kept.Close(), e.rejected.Close())
}
