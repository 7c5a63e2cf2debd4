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

const scoreLong = `Score text pairs with Rouge-L and Rouge-1, computed exactly as the filters
compute them (and as Google's rouge_score package does, to the last bit).
Use it to see why two texts were judged near-duplicates or in disagreement.

Input, on stdin: one JSON object per line, {"a": PREDICTION, "b": TARGET};
other fields are ignored and blank lines are skipped.
Output, on stdout: one JSON object per input line, in order:

  {"rougeL": F, "rouge1": F, "tokens_a": [...], "tokens_b": [...]}

Tokens. A text is lowercased, every run of characters other than a-z and 0-9
becomes a word break, and the words are the tokens: "Don't!" gives "don" and
"t", and non-ASCII letters break words ("café" gives "caf"). With --stem,
tokens longer than three characters are replaced by their Porter stem (NLTK's
variant: "running" gives "run", "happy" gives "happi"). tokens_a and
tokens_b show exactly what was compared.

Scores. Both are F-measures between 0 (nothing shared, or an empty text)
and 1 (the same tokens), and neither depends on which text is a and which
is b.
  rougeL  from the longest common subsequence (LCS): the most tokens that
          appear in both texts in the same order, not necessarily
          adjacent. Precision = LCS/len(a), recall = LCS/len(b),
          F = 2·P·R/(P+R).
  rouge1  from the unigram overlap: for each distinct token, the smaller
          of its counts in a and b, summed, regardless of order; then the
          same P, R and F. rouge1 is never below rougeL; a large gap means
          the texts share words but in a different order.

Scores are printed with every digit of the float computed:
0.8000000000000002 is what rouge_score also gets for P = R = 0.8.

How the pipeline uses them (default thresholds).
  Novelty: a new instruction is rejected as a near-duplicate when its
  rougeL (no stemming) against any seed or accepted instruction of its
  type is above 0.7; exactly 0.7 is kept.
  Consensus: each candidate output is normalized (lowercase, ASCII
  punctuation deleted, whitespace collapsed). If some are then equal, the
  largest group of equal outputs wins without scoring. Otherwise every
  pair is scored with rougeL with stemming, the candidate with the
  highest total wins, and the example is dropped when the lowest pairwise
  score is 0.01 or less. Because of the normalization, "don't" is one
  token "dont" there, while score takes the texts exactly as given.`

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
		Long:  scoreLong,
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
