package filter

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// noveltySynthetic returns n synthetic instructions, deterministic for a
// seed: 10–20 words from instruction-like templates over a vocabulary
// whose content words are drawn Zipf-like (so many pairs share words,
// and the common function words are everywhere), plus about 20% near
// duplicates (one to three word edits of an earlier instruction).
func noveltySynthetic(n int, seed uint64) []string {
	texts, _ := noveltySyntheticDups(n, seed)
	return texts
}

// noveltySyntheticDups is noveltySynthetic, also returning how many of
// the texts are near duplicates.
func noveltySyntheticDups(n int, seed uint64) (texts []string, dups int) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	openers := []string{
		"Write a", "Write an", "Give me a", "Create a", "Generate a", "Describe the",
		"Explain the", "Summarize the", "List the", "Find the", "Identify the",
		"Classify the", "Suggest a", "Compose a", "Rewrite the", "Translate the",
		"What is the", "How do you", "Why is the", "Tell me about the", "Make a list of",
		"Given a", "Given the following", "Come up with a", "Design a", "Plan a",
	}
	function := []string{"the", "a", "of", "to", "and", "in", "for", "with", "on", "that", "is", "your", "about", "from", "by", "as", "it", "this"}
	// Content words: syllable combinations give a few thousand distinct
	// words; a Zipf draw makes some of them common.
	syl := []string{"ba", "co", "de", "fi", "gu", "ha", "jo", "ki", "lu", "ma", "ne", "po", "qui", "ra", "si", "tu", "vo", "wa", "xe", "zo"}
	content := make([]string, 0, 4000)
	for _, a := range syl {
		for _, b := range syl {
			for _, c := range []string{"", "n", "r", "s", "t", "l", "m", "k", "d", "p"} {
				content = append(content, a+b+c)
			}
		}
	}
	r.Shuffle(len(content), func(i, j int) { content[i], content[j] = content[j], content[i] })
	zipf := rand.NewZipf(r, 1.1, 2, uint64(len(content)-1))
	word := func() string {
		if r.IntN(3) == 0 {
			return function[r.IntN(len(function))]
		}
		return content[zipf.Uint64()]
	}
	out := make([]string, 0, n)
	var b strings.Builder
	for len(out) < n {
		if len(out) > 10 && r.IntN(5) == 0 {
			// Near duplicate of an earlier instruction.
			w := strings.Fields(out[r.IntN(len(out))])
			for range 1 + r.IntN(3) {
				switch i := r.IntN(len(w)); r.IntN(3) {
				case 0:
					w[i] = word()
				case 1:
					w = append(w[:i], append([]string{word()}, w[i:]...)...)
				default:
					if len(w) > 4 {
						w = append(w[:i], w[i+1:]...)
					}
				}
			}
			out = append(out, strings.Join(w, " "))
			dups++
			continue
		}
		b.Reset()
		b.WriteString(openers[r.IntN(len(openers))])
		words := len(strings.Fields(b.String()))
		target := 10 + r.IntN(11)
		for ; words < target; words++ {
			b.WriteByte(' ')
			b.WriteString(word())
		}
		b.WriteByte('.')
		out = append(out, b.String())
	}
	return out, dups
}

func benchmarkDedup(b *testing.B, n int) {
	texts := noveltySynthetic(n, 1)
	b.ReportAllocs()
	b.ResetTimer()
	var st NoveltyStats
	var kept int
	for b.Loop() {
		x := NewIndex()
		kept = 0
		for _, d := range x.Dedup(texts, 0.7) {
			if d.Novel {
				kept++
			}
		}
		st = x.Stats()
	}
	b.ReportMetric(float64(kept), "kept")
	b.ReportMetric(float64(st.LCS), "lcs")
	b.ReportMetric(float64(st.Pairs-st.LCS), "pruned")
	b.ReportMetric(float64(st.Postings), "postings")
	b.ReportMetric(float64(st.Counted), "counted")
}

// noveltyBenchIndex returns an index of the first n synthetic texts,
// added without checks, and other texts to query it with.
func noveltyBenchIndex(n int) (*Index, []string) {
	texts := noveltySynthetic(n+1000, 2)
	x := NewIndex()
	for _, s := range texts[:n] {
		x.Add(s)
	}
	return x, texts[n:]
}

// BenchmarkCheck80k is one novelty check against 80k entries (the
// size the 100k dedup ends with).
func BenchmarkCheck80k(b *testing.B) {
	x, queries := noveltyBenchIndex(80_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		x.Check(queries[i%len(queries)], 0.7)
		i++
	}
}

// BenchmarkSimilar80k is one Similar call against 80k entries: brute
// force, one LCS per entry.
func BenchmarkSimilar80k(b *testing.B) {
	x, queries := noveltyBenchIndex(80_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		x.Similar(queries[i%len(queries)], 10)
		i++
	}
}

// BenchmarkDedup100k dedups 100k synthetic instructions at 0.7 from an
// empty index; the target is at most 10 s per op on two cores.
func BenchmarkDedup100k(b *testing.B) { benchmarkDedup(b, 100_000) }

// BenchmarkDedup10k is the quick variant.
func BenchmarkDedup10k(b *testing.B) { benchmarkDedup(b, 10_000) }

// TestNoveltySynthetic checks that the benchmark data is deterministic
// and shaped as described: 10–20 words for a fresh instruction, and a
// good part of near duplicates.
func TestNoveltySynthetic(t *testing.T) {
	a, dups := noveltySyntheticDups(3000, 1)
	if b := noveltySynthetic(3000, 1); !slices.Equal(a, b) {
		t.Fatal("noveltySynthetic is not deterministic")
	}
	words := 0
	for _, s := range a {
		words += len(strings.Fields(s))
	}
	if mean := float64(words) / float64(len(a)); mean < 12 || mean > 18 {
		t.Errorf("%.1f words on average, want about 15", mean)
	}
	if share := float64(dups) / float64(len(a)); share < 0.15 || share > 0.25 {
		t.Errorf("%.0f%% near duplicates, want about 20%%", 100*share)
	}
}

// BenchmarkDedupNovel dedups the novelty benchmark set (internal/novelgen:
// English instructions walked from the repository's corpus, 22% planted
// near duplicates) at 0.7 with each engine. The larger sizes take
// minutes: run one with -bench 'DedupNovel/prefix/n=1000k'.
func BenchmarkDedupNovel(b *testing.B) {
	for _, eng := range noveltyEngines {
		for _, n := range []int{100_000, 200_000, 400_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/n=%dk", eng.name, n/1000), func(b *testing.B) {
				texts := novelSet(b, n, 1).Texts
				b.ResetTimer()
				var st NoveltyStats
				kept := 0
				for b.Loop() {
					x := eng.new()
					kept = 0
					for _, d := range x.Dedup(texts, 0.7) {
						if d.Novel {
							kept++
						}
					}
					st = x.Stats()
				}
				b.ReportMetric(float64(kept)/float64(n), "kept/op")
				b.ReportMetric(float64(st.LCS), "lcs")
				b.ReportMetric(float64(st.Postings), "postings")
			})
		}
	}
}

// BenchmarkPrefixCheck400k is one prefix-engine check against the
// instructions kept from 400k of the benchmark set, on one goroutine: the
// search alone (its list reading is what grows with the set), without
// Dedup's batches and adds.
func BenchmarkPrefixCheck400k(b *testing.B) {
	texts := novelSet(b, 401_000, 1).Texts
	x := NewPrefixIndex()
	x.Dedup(texts[:400_000], 0.7)
	queries := texts[400_000:]
	x.Check(queries[0], 0.7)
	st0 := x.Stats()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		x.Check(queries[i%len(queries)], 0.7)
		i++
	}
	st := x.Stats()
	b.ReportMetric(float64(st.Postings-st0.Postings)/float64(b.N), "postings/op")
}
