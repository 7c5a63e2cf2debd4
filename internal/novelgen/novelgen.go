// Package novelgen generates large, seeded sets of English instructions
// for the novelty benchmarks: mostly novel texts walked from a word-bigram
// model of real instructions and outputs, with planted near duplicates
// (one to three word edits of an earlier text), so that many novelty
// decisions fall close to the usual 0.7 threshold.
//
// The model is built from the JSONL files under the repository's
// testdata/ (see testdata/README.md for their provenance): every string
// value, and every key of a "most_similar" map, is text. The same corpus
// and seed give the same instructions.
package novelgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Model is a word-bigram model of a corpus.
type Model struct {
	words  []string  // vocabulary, in order of first appearance
	unigr  []int32   // every token of the corpus, as word ids (a unigram draw is a uniform pick)
	starts []int32   // word ids that begin a sentence
	next   [][]int32 // word id → the ids that follow it, with repeats
}

// Load builds a model from every *.jsonl file under dir.
func Load(dir string) (*Model, error) {
	var texts []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".jsonl") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for line := 1; sc.Scan(); line++ {
			var v any
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				return fmt.Errorf("%s:%d: %v", path, line, err)
			}
			texts = collect(texts, v)
		}
		return sc.Err()
	})
	if err != nil {
		return nil, err
	}
	return FromTexts(texts)
}

// collect appends the strings of a decoded JSON value.
func collect(texts []string, v any) []string {
	switch v := v.(type) {
	case string:
		texts = append(texts, v)
	case []any:
		for _, e := range v {
			texts = collect(texts, e)
		}
	case map[string]any:
		for k, e := range v {
			if _, ok := e.(float64); ok {
				texts = append(texts, k) // most_similar: text → score
			}
			texts = collect(texts, e)
		}
	}
	return texts
}

// FromTexts builds a model from texts.
func FromTexts(texts []string) (*Model, error) {
	m := &Model{}
	ids := make(map[string]int32)
	id := func(w string) int32 {
		i, ok := ids[w]
		if !ok {
			i = int32(len(m.words))
			ids[w] = i
			m.words = append(m.words, w)
			m.next = append(m.next, nil)
		}
		return i
	}
	// Map iteration order varies: sort for a deterministic model.
	texts = slices.Clone(texts)
	slices.Sort(texts)
	texts = slices.Compact(texts)
	for _, t := range texts {
		prev := int32(-1)
		for _, w := range strings.Fields(t) {
			if w == "|EoS|" {
				continue // the reference's end-of-sequence marker
			}
			i := id(w)
			m.unigr = append(m.unigr, i)
			if prev < 0 || strings.HasSuffix(m.words[prev], ".") {
				m.starts = append(m.starts, i)
			}
			if prev >= 0 {
				m.next[prev] = append(m.next[prev], i)
			}
			prev = i
		}
	}
	if len(m.starts) == 0 {
		return nil, fmt.Errorf("novelgen: the corpus has no words")
	}
	return m, nil
}

// Words returns the size of the vocabulary.
func (m *Model) Words() int { return len(m.words) }

// Set holds generated instructions.
type Set struct {
	Texts []string
	// Dups is the number of planted near duplicates among Texts.
	Dups int
}

// Generate returns n instructions for seed: about 22% of them near
// duplicates of an earlier one, the others walks of 8–24 words.
func (m *Model) Generate(n int, seed uint64) Set {
	r := rand.New(rand.NewPCG(seed, 0x6e6f76656c))
	tail := rand.NewZipf(r, 1.2, 1, 1<<26)
	set := Set{Texts: make([]string, 0, n)}
	var b strings.Builder
	var w []string
	for len(set.Texts) < n {
		if len(set.Texts) > 10 && r.IntN(100) < 22 {
			w = append(w[:0], strings.Fields(set.Texts[r.IntN(len(set.Texts))])...)
			for range 1 + r.IntN(3) {
				i := r.IntN(len(w))
				switch r.IntN(3) {
				case 0:
					w[i] = m.words[m.unigr[r.IntN(len(m.unigr))]]
				case 1:
					w = slices.Insert(w, i, m.words[m.unigr[r.IntN(len(m.unigr))]])
				default:
					if len(w) > 4 {
						w = slices.Delete(w, i, i+1)
					}
				}
			}
			set.Texts = append(set.Texts, strings.Join(w, " "))
			set.Dups++
			continue
		}
		b.Reset()
		cur := m.starts[r.IntN(len(m.starts))]
		for k, size := 0, 8+r.IntN(17); k < size; k++ {
			if k > 0 {
				b.WriteByte(' ')
			}
			f := m.next[cur]
			switch {
			case r.IntN(100) < 8:
				// A rare word: a name, a number, a term. Drawn Zipf-like
				// from the corpus's words and then made-up ones, so that
				// the vocabulary keeps growing with the set, as English
				// text does (Heaps' law), instead of being the corpus's.
				if w := int(tail.Uint64()); w < len(m.words) {
					cur = int32(w)
				} else {
					b.WriteString(madeUp(w))
					cur = m.starts[r.IntN(len(m.starts))]
					continue
				}
			case len(f) == 0 || r.IntN(100) < 15:
				cur = m.unigr[r.IntN(len(m.unigr))] // a jump, as common words go
			default:
				cur = f[r.IntN(len(f))]
			}
			b.WriteString(m.words[cur])
		}
		set.Texts = append(set.Texts, b.String())
	}
	return set
}

// madeUp returns the made-up word of rank k: syllables spelling k.
func madeUp(k int) string {
	const syl = "ba ko de fi gu ha jo ki lu ma ne po ri sa tu vo wa xe yo zu"
	sy := strings.Fields(syl)
	var b strings.Builder
	for {
		b.WriteString(sy[k%len(sy)])
		k /= len(sy)
		if k == 0 {
			return b.String()
		}
	}
}
