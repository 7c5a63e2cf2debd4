package output

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
)

// Row groups are cut by record count and text size, never by time, so
// the same records always give the same bytes. A row group is what a
// Parquet writer holds in memory, so these bound the writer's memory.
const (
	parquetGroupRows  = 10_000
	parquetGroupBytes = 16 << 20
)

// ParquetWriter writes records as an Apache Parquet file whose columns
// mirror the JSONL lines of the same Options: alpaca's three strings,
// messages, conversations, prompt and completion as lists of structs,
// meta as a struct of nullable fields with lists where JSONL has lists
// and nulls where JSONL has null. Rows are buffered into row groups of at
// most parquetGroupRows records (or parquetGroupBytes of text), each
// written out when full, so memory stays flat however many records
// stream through. Close writes the last row group and the footer; a file
// cut off before Close has no footer and cannot be read. The same records
// and options always give the same bytes. Not safe for concurrent use.
type ParquetWriter struct {
	opts Options
	// groupRows and groupBytes are the row group limits
	// (parquetGroupRows and parquetGroupBytes).
	groupRows, groupBytes int
	write                 func(Record) error
	flush                 func() error
	close                 func() error
	n                     int
	rows                  int
	bytes                 int
	closed                bool
}

// NewParquet returns a ParquetWriter to w with the options o, or the
// error of o.Validate.
func NewParquet(w io.Writer, o Options) (*ParquetWriter, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	p := &ParquetWriter{opts: o, groupRows: parquetGroupRows, groupBytes: parquetGroupBytes}
	switch f := o.format(); {
	case f == FormatOpenAI && o.Meta:
		parquetRows(p, w, func(r Record) (openAIMetaRow, error) {
			m, err := parquetMeta(o.meta(r))
			return openAIMetaRow{p.openAI(r), m}, err
		})
	case f == FormatOpenAI:
		parquetRows(p, w, func(r Record) (openAIRow, error) { return p.openAI(r), nil })
	case f == FormatShareGPT && o.Meta:
		parquetRows(p, w, func(r Record) (shareGPTMetaRow, error) {
			m, err := parquetMeta(o.meta(r))
			return shareGPTMetaRow{shareGPTRow{o.shareGPT(r)}, m}, err
		})
	case f == FormatShareGPT:
		parquetRows(p, w, func(r Record) (shareGPTRow, error) { return shareGPTRow{o.shareGPT(r)}, nil })
	case f == FormatPromptCompletion && o.Meta:
		parquetRows(p, w, func(r Record) (promptCompletionMetaRow, error) {
			m, err := parquetMeta(o.meta(r))
			return promptCompletionMetaRow{p.promptCompletion(r), m}, err
		})
	case f == FormatPromptCompletion:
		parquetRows(p, w, func(r Record) (promptCompletionRow, error) { return p.promptCompletion(r), nil })
	case o.Meta:
		parquetRows(p, w, func(r Record) (alpacaMetaRow, error) {
			m, err := parquetMeta(o.meta(r))
			return alpacaMetaRow{alpacaRow{r.Instruction, r.Input, r.Output}, m}, err
		})
	default:
		parquetRows(p, w, func(r Record) (alpacaRow, error) { return alpacaRow{r.Instruction, r.Input, r.Output}, nil })
	}
	return p, nil
}

// parquetRows sets p's functions to write rows of type T made by conv.
func parquetRows[T any](p *ParquetWriter, w io.Writer, conv func(Record) (T, error)) {
	pw := parquet.NewGenericWriter[T](w, parquet.Compression(&parquet.Snappy))
	row := make([]T, 1)
	p.write = func(r Record) error {
		var err error
		if row[0], err = conv(r); err != nil {
			return err
		}
		_, err = pw.Write(row)
		return err
	}
	p.flush, p.close = pw.Flush, pw.Close
}

// Write adds one record, writing out the row group when it is full.
func (p *ParquetWriter) Write(r Record) error {
	if p.closed {
		return fmt.Errorf("record %d: parquet writer already closed", p.n+1)
	}
	if err := p.write(r); err != nil {
		return fmt.Errorf("record %d: %w", p.n+1, err)
	}
	p.n++
	p.rows++
	p.bytes += len(r.Instruction) + len(r.Input) + len(r.Output) + len(p.opts.System)
	if p.rows >= p.groupRows || p.bytes >= p.groupBytes {
		p.rows, p.bytes = 0, 0
		return p.flush()
	}
	return nil
}

// Count returns the number of records written.
func (p *ParquetWriter) Count() int { return p.n }

// Close writes the last row group and the footer. It does not close the
// underlying writer. Calling it again does nothing.
func (p *ParquetWriter) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	return p.close()
}

func (p *ParquetWriter) openAI(r Record) openAIRow {
	return openAIRow{append(p.opts.prompt(r), chatMessage{Role: roleAssistant, Content: r.Output})}
}

func (p *ParquetWriter) promptCompletion(r Record) promptCompletionRow {
	return promptCompletionRow{p.opts.prompt(r), []chatMessage{{Role: roleAssistant, Content: r.Output}}}
}

// The row types: one per format, with and without meta. Their columns
// and order are those of the JSONL lines.
type (
	alpacaRow struct {
		Instruction string `parquet:"instruction"`
		Input       string `parquet:"input"`
		Output      string `parquet:"output"`
	}
	alpacaMetaRow struct {
		alpacaRow
		Meta parquetMetaRow `parquet:"meta"`
	}
	openAIRow struct {
		Messages []chatMessage `parquet:"messages,list"`
	}
	openAIMetaRow struct {
		openAIRow
		Meta parquetMetaRow `parquet:"meta"`
	}
	shareGPTRow struct {
		Conversations []shareGPTTurn `parquet:"conversations,list"`
	}
	shareGPTMetaRow struct {
		shareGPTRow
		Meta parquetMetaRow `parquet:"meta"`
	}
	promptCompletionRow struct {
		Prompt     []chatMessage `parquet:"prompt,list"`
		Completion []chatMessage `parquet:"completion,list"`
	}
	promptCompletionMetaRow struct {
		promptCompletionRow
		Meta parquetMetaRow `parquet:"meta"`
	}
)

// parquetMetaRow is Meta as a Parquet struct: nil pointers and nil
// slices are nulls, exactly where Meta.MarshalJSON writes null.
type parquetMetaRow struct {
	ID               *string           `parquet:"id,optional"`
	Type             *string           `parquet:"type,optional"`
	InstructionModel *string           `parquet:"instruction_model,optional"`
	InstanceModel    *string           `parquet:"instance_model,optional"`
	Ensemble         []string          `parquet:"ensemble,optional,list"`
	Consensus        *parquetConsensus `parquet:"consensus,optional"`
	NoveltyMax       *float64          `parquet:"novelty_max,optional"`
	Source           *string           `parquet:"source,optional"`
	MostSimilar      []parquetSimilar  `parquet:"most_similar,optional,list"`
}

type parquetConsensus struct {
	Reason   *string   `parquet:"reason,optional"`
	Pick     int64     `parquet:"pick"`
	Pairwise []float64 `parquet:"pairwise,optional,list"`
	Scores   []float64 `parquet:"scores,optional,list"`
	MinPair  float64   `parquet:"min_pair"`
	Winner   *string   `parquet:"winner,optional"`
	Judge    []float64 `parquet:"judge,optional,list"`
}

type parquetSimilar struct {
	Text  string  `parquet:"text"`
	Score float64 `parquet:"score"`
}

// parquetMeta converts m; a NaN or infinite score is an error, as in
// JSONL, so that both containers hold the same values.
func parquetMeta(m *Meta) (parquetMetaRow, error) {
	if err := m.checkFloats(); err != nil {
		return parquetMetaRow{}, err
	}
	v := parquetMetaRow{
		ID: str(m.ID), Type: str(m.Type),
		InstructionModel: str(m.InstructionModel), InstanceModel: str(m.InstanceModel),
		Ensemble: m.Ensemble, NoveltyMax: m.NoveltyMax, Source: str(m.Source),
	}
	if m.MostSimilar != nil {
		v.MostSimilar = make([]parquetSimilar, len(m.MostSimilar))
		for i, s := range m.MostSimilar {
			v.MostSimilar[i] = parquetSimilar(s)
		}
	}
	if c := m.Consensus; c != nil {
		v.Consensus = &parquetConsensus{
			Reason: str(c.Reason), Pick: int64(c.Pick), Winner: str(m.WinnerName()),
			Pairwise: c.Pairwise, Scores: c.Scores, MinPair: c.MinPair, Judge: c.Judge,
		}
	}
	return v, nil
}
