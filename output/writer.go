package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Options say how records are written. The zero value writes alpaca
// without provenance.
type Options struct {
	// Format is the record shape; "" means FormatAlpaca.
	Format Format
	// Meta writes every record's provenance under a top-level "meta"
	// key, in the fixed schema of Meta.MarshalJSON. A record without
	// Meta gets a meta of nulls, so that every line has the same keys.
	Meta bool
	// System, when not empty, is a system message put first in the
	// chat formats (openai, sharegpt as "system", prompt-completion in
	// the prompt). It is an error with alpaca, which has no turns.
	System string
	// Join separates instruction and input in the user turn of the chat
	// formats; "" means DefaultJoin. Alpaca keeps the two apart and
	// leaves the joining to the trainer.
	Join string
}

// Validate reports an option that cannot be honoured, naming its flag.
func (o Options) Validate() error {
	if o.Format != "" {
		if _, err := ParseFormat(string(o.Format)); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
	}
	if o.System != "" && !o.format().chat() {
		return fmt.Errorf("--system: the %s format has no system turn (use openai, sharegpt or prompt-completion)", FormatAlpaca)
	}
	return nil
}

func (o Options) format() Format {
	if o.Format == "" {
		return FormatAlpaca
	}
	return o.Format
}

// meta returns the provenance to write for r, or nil without Options.Meta.
func (o Options) meta(r Record) *Meta {
	switch {
	case !o.Meta:
		return nil
	case r.Meta == nil:
		return &Meta{}
	}
	return r.Meta
}

// metaWire returns the JSON form of r's provenance, or nil without
// Options.Meta.
func (o Options) metaWire(r Record) (*metaJSON, error) {
	if m := o.meta(r); m != nil {
		return m.wire()
	}
	return nil, nil
}

// Sink is a writer of records in one format: a JSONL *Writer or a
// *ParquetWriter. Close writes what is buffered (and, for Parquet, the
// footer); it does not close the underlying writer.
type Sink interface {
	Write(Record) error
	Count() int
	Close() error
}

// Open returns a Sink of the container c writing to w.
func Open(w io.Writer, c Container, o Options) (Sink, error) {
	if c == ContainerParquet {
		return NewParquet(w, o)
	}
	return NewJSONL(w, o)
}

// Writer streams records as JSONL in one format, one complete line per
// record. Each Write is flushed to the underlying writer before it
// returns, so a reader of the stream sees every record as soon as it is
// decided and never a partial line. A Writer is not safe for concurrent
// use.
type Writer struct {
	w    *bufio.Writer
	opts Options
	buf  bytes.Buffer
	enc  *json.Encoder
	n    int
}

// NewWriter returns a Writer of format to w, with provenance when meta,
// no system message and the default join. See NewJSONL for the other
// options.
func NewWriter(w io.Writer, format Format, meta bool) *Writer {
	return newJSONL(w, Options{Format: format, Meta: meta})
}

// NewJSONL returns a Writer to w with the options o, or the error of
// o.Validate.
func NewJSONL(w io.Writer, o Options) (*Writer, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return newJSONL(w, o), nil
}

func newJSONL(w io.Writer, o Options) *Writer {
	ww := &Writer{w: bufio.NewWriterSize(w, 64<<10), opts: o}
	ww.enc = json.NewEncoder(&ww.buf)
	ww.enc.SetEscapeHTML(false)
	return ww
}

// Count returns the number of records written.
func (w *Writer) Count() int { return w.n }

type alpacaLine struct {
	Instruction string    `json:"instruction"`
	Input       string    `json:"input"`
	Output      string    `json:"output"`
	Meta        *metaJSON `json:"meta,omitempty"`
}

type chatMessage struct {
	Role    string `json:"role" parquet:"role"`
	Content string `json:"content" parquet:"content"`
}

type openAILine struct {
	Messages []chatMessage `json:"messages"`
	Meta     *metaJSON     `json:"meta,omitempty"`
}

type shareGPTTurn struct {
	From  string `json:"from" parquet:"from"`
	Value string `json:"value" parquet:"value"`
}

type shareGPTLine struct {
	Conversations []shareGPTTurn `json:"conversations"`
	Meta          *metaJSON      `json:"meta,omitempty"`
}

type promptCompletionLine struct {
	Prompt     []chatMessage `json:"prompt"`
	Completion []chatMessage `json:"completion"`
	Meta       *metaJSON     `json:"meta,omitempty"`
}

// The roles of the chat formats.
const (
	roleSystem    = "system"
	roleUser      = "user"
	roleAssistant = "assistant"
	fromHuman     = "human"
	fromGPT       = "gpt"
)

// prompt returns the turns before the answer: the system message, if
// any, and the user turn.
func (o Options) prompt(r Record) []chatMessage {
	p := make([]chatMessage, 0, 2)
	if o.System != "" {
		p = append(p, chatMessage{Role: roleSystem, Content: o.System})
	}
	return append(p, chatMessage{Role: roleUser, Content: r.UserTurn(o.Join)})
}

// shareGPT returns the ShareGPT turns of r.
func (o Options) shareGPT(r Record) []shareGPTTurn {
	turns := make([]shareGPTTurn, 0, 3)
	if o.System != "" {
		turns = append(turns, shareGPTTurn{From: roleSystem, Value: o.System})
	}
	return append(turns, shareGPTTurn{From: fromHuman, Value: r.UserTurn(o.Join)}, shareGPTTurn{From: fromGPT, Value: r.Output})
}

// line returns the JSON value of r's line.
func (o Options) line(r Record) (any, error) {
	meta, err := o.metaWire(r)
	if err != nil {
		return nil, err
	}
	switch o.format() {
	case FormatOpenAI:
		return openAILine{Messages: append(o.prompt(r), chatMessage{Role: roleAssistant, Content: r.Output}), Meta: meta}, nil
	case FormatShareGPT:
		return shareGPTLine{Conversations: o.shareGPT(r), Meta: meta}, nil
	case FormatPromptCompletion:
		return promptCompletionLine{Prompt: o.prompt(r), Completion: []chatMessage{{Role: roleAssistant, Content: r.Output}}, Meta: meta}, nil
	}
	return alpacaLine{Instruction: r.Instruction, Input: r.Input, Output: r.Output, Meta: meta}, nil
}

// Write writes one record as one line and flushes it.
func (w *Writer) Write(r Record) error {
	if err := w.WriteBuffered(r); err != nil {
		return err
	}
	return w.w.Flush()
}

// WriteBuffered writes one record without flushing; call Flush when done.
// Use it for bulk output where per-record latency does not matter.
func (w *Writer) WriteBuffered(r Record) error {
	w.buf.Reset()
	line, err := w.opts.line(r)
	if err == nil {
		err = w.enc.Encode(line)
	}
	if err != nil {
		return fmt.Errorf("record %d: %w", w.n+1, err)
	}
	if _, err := w.w.Write(w.buf.Bytes()); err != nil {
		return err
	}
	w.n++
	return nil
}

// Flush writes any buffered records to the underlying writer.
func (w *Writer) Flush() error { return w.w.Flush() }

// Close flushes the buffered records; it does not close the underlying
// writer.
func (w *Writer) Close() error { return w.Flush() }
