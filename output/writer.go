package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
)

// Writer streams records as JSONL in one format, one complete line per
// record. Each Write is flushed to the underlying writer before it
// returns, so a reader of the stream sees every record as soon as it is
// decided and never a partial line. A Writer is not safe for concurrent
// use.
type Writer struct {
	w      *bufio.Writer
	format Format
	meta   bool
	buf    bytes.Buffer
	enc    *json.Encoder
	n      int
}

// NewWriter returns a Writer of format to w. With meta, every record's
// Meta is written under a top-level "meta" key.
func NewWriter(w io.Writer, format Format, meta bool) *Writer {
	ww := &Writer{w: bufio.NewWriterSize(w, 64<<10), format: format, meta: meta}
	ww.enc = json.NewEncoder(&ww.buf)
	ww.enc.SetEscapeHTML(false)
	return ww
}

// Count returns the number of records written.
func (w *Writer) Count() int { return w.n }

type alpacaLine struct {
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`
	Meta        *Meta  `json:"meta,omitempty"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type openAILine struct {
	Messages []chatMessage `json:"messages"`
	Meta     *Meta         `json:"meta,omitempty"`
}

type shareGPTTurn struct {
	From  string `json:"from"`
	Value string `json:"value"`
}

type shareGPTLine struct {
	Conversations []shareGPTTurn `json:"conversations"`
	Meta          *Meta          `json:"meta,omitempty"`
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
	meta := r.Meta
	if !w.meta {
		meta = nil
	}
	var v any
	switch w.format {
	case FormatOpenAI:
		v = openAILine{Messages: []chatMessage{
			{Role: "user", Content: r.UserTurn()},
			{Role: "assistant", Content: r.Output},
		}, Meta: meta}
	case FormatShareGPT:
		v = shareGPTLine{Conversations: []shareGPTTurn{
			{From: "human", Value: r.UserTurn()},
			{From: "gpt", Value: r.Output},
		}, Meta: meta}
	default:
		v = alpacaLine{Instruction: r.Instruction, Input: r.Input, Output: r.Output, Meta: meta}
	}
	if err := w.enc.Encode(v); err != nil {
		return err
	}
	if _, err := w.w.Write(w.buf.Bytes()); err != nil {
		return err
	}
	w.n++
	return nil
}

// Flush writes any buffered records to the underlying writer.
func (w *Writer) Flush() error { return w.w.Flush() }
