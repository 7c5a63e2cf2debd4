package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/spf13/cobra"
)

// scoreMaxLine is the longest input line score accepts.
const scoreMaxLine = 256 << 20

// scoreOptions are the options of the score command.
type scoreOptions struct {
	Stem bool // Porter-stem tokens longer than three characters
}

// scorePair is one input line.
type scorePair struct {
	A *string `json:"a"`
	B *string `json:"b"`
}

// scoreResult is one output line.
type scoreResult struct {
	RougeL  float64  `json:"rougeL"`
	Rouge1  float64  `json:"rouge1"`
	TokensA []string `json:"tokens_a"`
	TokensB []string `json:"tokens_b"`
}

func (a *app) scoreCmd() *cobra.Command {
	var opts scoreOptions
	cmd := &cobra.Command{
		Use:   "score",
		Short: "Score text pairs with Rouge-L and Rouge-1, as the filters do",
		Long:  helpText("score"),
		Example: `  echo '{"a": "Write a poem about cats.", "b": "Write a poem about dogs."}' | ensinstruct score
  {"rougeL":0.8000000000000002,"rouge1":0.8000000000000002,"tokens_a":["write","a","poem","about","cats"],"tokens_b":["write","a","poem","about","dogs"]}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return opts.run(cmd.Context(), a.stdin, a.stdout)
		},
	}
	cmd.Flags().BoolVar(&opts.Stem, "stem", false, "Porter-stem tokens longer than three characters (as the consensus filter does)")
	return cmd
}

// run reads {"a", "b"} lines from in and writes one score line per pair to
// out. A malformed line is bad input, reported as stdin:LINE.
func (o *scoreOptions) run(ctx context.Context, in io.Reader, out io.Writer) error {
	tokenize := filter.Tokenize
	if o.Stem {
		tokenize = filter.TokenizeStem
	}
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), scoreMaxLine)
	line := 0
	for sc.Scan() {
		line++
		if err := ctx.Err(); err != nil {
			return err
		}
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		p, err := scoreParse(text)
		if err != nil {
			return badInput(fmt.Errorf("stdin:%d: %w", line, err))
		}
		ta, tb := tokenize(*p.A), tokenize(*p.B)
		r := scoreResult{
			RougeL:  filter.RougeL(ta, tb).F,
			Rouge1:  filter.Rouge1(ta, tb).F,
			TokensA: scoreNonNil(ta),
			TokensB: scoreNonNil(tb),
		}
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("writing score for stdin:%d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return badInput(fmt.Errorf("stdin:%d: line longer than %d MiB", line+1, scoreMaxLine>>20))
		}
		return fmt.Errorf("reading stdin: %w", err)
	}
	return nil
}

// scoreParse decodes one input line.
func scoreParse(line []byte) (scorePair, error) {
	var p scorePair
	if err := json.Unmarshal(line, &p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field != "" {
				return p, fmt.Errorf("field %q is a JSON %s, want a string", te.Field, te.Value)
			}
			return p, fmt.Errorf(`got a JSON %s, want an object {"a": TEXT, "b": TEXT}`, te.Value)
		}
		return p, fmt.Errorf("invalid JSON: %w", err)
	}
	switch {
	case p.A == nil:
		return p, errors.New(`field "a" is missing or null`)
	case p.B == nil:
		return p, errors.New(`field "b" is missing or null`)
	}
	return p, nil
}

// scoreNonNil returns s, or an empty slice when s is nil, so that it
// encodes as [] rather than null.
func scoreNonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
