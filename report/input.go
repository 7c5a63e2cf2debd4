package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"golang.org/x/sync/errgroup"
)

// Names of the files a run directory holds.
const (
	ManifestFile = "manifest.json"
	KeptFile     = "kept.jsonl"
	RejectedFile = "rejected.jsonl"
)

// Source names the files a report is built from. At least one of the
// fields must be set. The zero value is not useful; Resolve fills a Source
// from command-line paths.
type Source struct {
	// Manifest is a run manifest (manifest.json), or "".
	Manifest string
	// Data is a dataset in any of the output formats (a run's kept.jsonl
	// among them), with or without provenance, or "".
	Data string
	// Rejected is a rejected file (a run's rejected.jsonl, or the filter
	// command's --rejected output), or "".
	Rejected string
}

// ErrInput is matched (errors.Is) by every error that Build returns for
// input that is missing or malformed, as opposed to a failure to read.
var ErrInput = errors.New("bad report input")

// inputError is a problem with the report's input files.
type inputError struct{ msg string }

func (e *inputError) Error() string        { return e.msg }
func (e *inputError) Is(target error) bool { return target == ErrInput }

func inputErrorf(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// Resolve turns the path a user gave into a Source: a run directory
// (whichever of manifest.json, kept.jsonl and rejected.jsonl it holds),
// a rejected file (its first record has a "reason" key) or a
// dataset. rejected, when not "", adds or replaces the rejected file.
func Resolve(path, rejected string) (Source, error) {
	var src Source
	st, err := os.Stat(path)
	if err != nil {
		return src, inputErrorf("%v", err)
	}
	switch {
	case st.IsDir():
		// A run still in progress may have its evidence files and no
		// manifest yet.
		for _, f := range []struct {
			name string
			dst  *string
		}{{ManifestFile, &src.Manifest}, {KeptFile, &src.Data}, {RejectedFile, &src.Rejected}} {
			p := filepath.Join(path, f.name)
			if _, err := os.Stat(p); err == nil {
				*f.dst = p
			}
		}
		if src == (Source{}) {
			return src, inputErrorf("%s: not a run directory: it has no %s, %s or %s", path, ManifestFile, KeptFile, RejectedFile)
		}
	default:
		isRej, err := isRejectedFile(path)
		if err != nil {
			return src, err
		}
		if isRej {
			src.Rejected = path
		} else {
			src.Data = path
		}
	}
	if rejected != "" {
		if st, err := os.Stat(rejected); err != nil {
			return src, inputErrorf("--rejected: %v", err)
		} else if st.IsDir() {
			return src, inputErrorf("--rejected: %s is a directory", rejected)
		}
		if src.Data == "" && src.Manifest == "" && src.Rejected != "" {
			return src, inputErrorf("%s is a rejected file already; give the dataset as the argument and --rejected %s", path, rejected)
		}
		src.Rejected = rejected
	}
	return src, nil
}

// isRejectedFile reports whether the first record of the file at path has
// a "reason" key.
func isRejectedFile(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, inputErrorf("%v", err)
	}
	defer f.Close()
	sc := newScanner(f)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(b, &keys); err != nil {
			return false, inputErrorf("%s:%d: invalid JSON: %v", path, line, err)
		}
		_, ok := keys["reason"]
		return ok, nil
	}
	if err := sc.Err(); err != nil {
		return false, scanError(path, err)
	}
	return false, nil
}

func newScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), output.MaxLineBytes)
	return sc
}

func scanError(name string, err error) error {
	if errors.Is(err, bufio.ErrTooLong) {
		return inputErrorf("%s: a line is longer than %d bytes", name, output.MaxLineBytes)
	}
	return fmt.Errorf("reading %s: %w", name, err)
}

// fieldError turns a JSON decoding error into a message naming the field.
func fieldError(err error, prefix string) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s%s: want %s, got %s", prefix, te.Field, te.Type, te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON: %v (at byte %d)", err, se.Offset)
	}
	return err.Error()
}

// manifest is the part of a run manifest the report reads. Every field is
// optional: a manifest written by an older or newer version still
// renders.
type manifest struct {
	Version    string  `json:"version"`
	ConfigHash string  `json:"config_hash"`
	Seed       int64   `json:"seed"`
	Status     string  `json:"status"`
	Error      string  `json:"error"`
	Started    string  `json:"started"`
	Finished   string  `json:"finished"`
	Seconds    float64 `json:"seconds"`
	Seeds      struct {
		Source string `json:"source"`
		Tasks  int    `json:"tasks"`
		TypeA  int    `json:"type_a"`
		TypeB  int    `json:"type_b"`
	} `json:"seeds"`
	Models []struct {
		Name    string   `json:"name"`
		Backend string   `json:"backend"`
		Model   string   `json:"model"`
		Roles   []string `json:"roles"`
		Weight  float64  `json:"weight"`
		Style   string   `json:"style"`
	} `json:"models"`
	NoveltyThreshold *float64 `json:"novelty_threshold"`
	Output           struct {
		Path    string `json:"path"`
		Format  string `json:"format"`
		Meta    bool   `json:"meta"`
		Records int    `json:"records"`
	} `json:"output"`
	Counts   map[string]pipeline.Counts `json:"counts"`
	Calls    map[string]ModelCalls      `json:"calls"`
	Totals   ModelCalls                 `json:"totals"`
	Timeline []TimePoint                `json:"timeline"`
}

func readManifest(path string) (*manifest, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, inputErrorf("%v", err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, inputErrorf("%s: %s", path, fieldError(err, ""))
	}
	return &m, nil
}

// provenance is what a dataset line may carry besides its record: the
// generate and filter commands' meta, and the candidates compared.
type provenance struct {
	Meta       *output.Meta `json:"meta"`
	Candidates []string     `json:"candidates"`
}

// readData streams the records of a dataset in any format to fn, with
// their provenance. The records are read with output.Reader (which
// detects the format); the provenance is decoded from the same lines by a
// second reader of the file that follows the first line by line. The two
// decodings run on two goroutines, the second calling fn.
func readData(path string, fn func(rec output.Record, p provenance, line int) error) error {
	f, err := os.Open(path)
	if err != nil {
		return inputErrorf("%v", err)
	}
	defer f.Close()
	side, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	defer side.Close()

	type numbered struct {
		rec  output.Record
		line int
	}
	const batch = 128
	batches := make(chan []numbered, 8)
	g, ctx := errgroup.WithContext(context.Background())
	g.Go(func() error {
		defer close(batches)
		rd := output.NewReader(f, path)
		var b []numbered
		for {
			rec, err := rd.Read()
			if err == nil {
				b = append(b, numbered{rec, rd.Line()})
				if len(b) < batch {
					continue
				}
			}
			if len(b) > 0 {
				select {
				case batches <- b:
					b = nil
				case <-ctx.Done():
					return nil
				}
			}
			var le *output.LineError
			switch {
			case err == nil:
			case err == io.EOF:
				return nil
			case errors.As(err, &le):
				return inputErrorf("%v", err)
			default:
				return err
			}
		}
	})
	g.Go(func() error {
		sc := newScanner(side)
		at := 0
		for b := range batches {
			for _, n := range b {
				for at < n.line {
					if !sc.Scan() {
						if err := sc.Err(); err != nil {
							return scanError(path, err)
						}
						return fmt.Errorf("reading %s: file changed while it was read", path)
					}
					at++
				}
				var p provenance
				line := sc.Bytes()
				if bytes.Contains(line, []byte(`"meta"`)) || bytes.Contains(line, []byte(`"candidates"`)) {
					if err := json.Unmarshal(line, &p); err != nil {
						return inputErrorf("%s:%d: %s", path, at, fieldError(err, ""))
					}
				}
				if err := fn(n.rec, p, at); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return g.Wait()
}

// rejectedLine is one line of a rejected file.
type rejectedLine struct {
	Reason      *string      `json:"reason"`
	Source      string       `json:"source"`
	Error       string       `json:"error"`
	Instruction string       `json:"instruction"`
	Input       string       `json:"input"`
	Output      string       `json:"output"`
	Candidates  []string     `json:"candidates"`
	Meta        *output.Meta `json:"meta"`
	Raw         string       `json:"raw"`
}

// readRejected streams the lines of a rejected file to fn.
func readRejected(path string, fn func(r rejectedLine, line int) error) error {
	f, err := os.Open(path)
	if err != nil {
		return inputErrorf("%v", err)
	}
	defer f.Close()
	sc := newScanner(f)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var r rejectedLine
		if err := json.Unmarshal(b, &r); err != nil {
			return inputErrorf("%s:%d: %s", path, line, fieldError(err, ""))
		}
		if r.Reason == nil || *r.Reason == "" {
			return inputErrorf("%s:%d: reason: missing (not a rejected file?)", path, line)
		}
		if err := fn(r, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return scanError(path, err)
	}
	return nil
}
