package filter

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/internal/novelgen"
	"github.com/ensinstruct/ensinstruct/internal/testdata"
)

// novelSet returns n instructions of the novelty benchmarks' set.
func novelSet(tb testing.TB, n int, seed uint64) novelgen.Set {
	tb.Helper()
	m, err := novelgen.Load(testdata.Root(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return m.Generate(n, seed)
}

// TestPrefixIndexMatchesExact dedups 10k and 20k instructions of the
// benchmark set with both engines, and a 3k one by brute force: every
// decision, and every rejected candidate's score, must agree.
func TestPrefixIndexMatchesExact(t *testing.T) {
	set := novelSet(t, 20_000, 3)
	t.Run("brute force 3k", func(t *testing.T) {
		texts := set.Texts[:3000]
		got := NewPrefixIndex().Dedup(texts, 0.7)
		b := noveltyBrute{fast: true}
		for i, text := range texts {
			novel, maxScore, _ := b.check(text, 0.7)
			noveltyCheckAgainst(t, fmt.Sprintf("text %d", i), got[i], novel, maxScore, 0.7)
			if novel {
				b.add(text)
			}
		}
	})
	for _, n := range []int{10_000, 20_000} {
		t.Run(fmt.Sprintf("exact engine %dk", n/1000), func(t *testing.T) {
			texts := set.Texts[:n]
			want := NewIndex().Dedup(texts, 0.7)
			x := NewPrefixIndex()
			got := x.Dedup(texts, 0.7)
			kept := 0
			for i := range texts {
				w, g := want[i], got[i]
				if g.Novel != w.Novel || !g.Novel && (g.Max != w.Max || !g.Exact) {
					t.Fatalf("text %d %q: prefix index %+v, exact index %+v", i, texts[i], g, w)
				}
				if g.Novel {
					kept++
				}
			}
			st := x.Stats()
			t.Logf("%d kept of %d; %d LCS for %d pairs", kept, n, st.LCS, st.Pairs)
			if st.LCS*50 > st.Pairs {
				t.Errorf("%d LCS computed for %d pairs: the prefixes prune too little", st.LCS, st.Pairs)
			}
		})
	}
}

// TestPrefixIndexThresholds checks one prefix index at several
// thresholds in turn, lower ones making it index longer prefixes.
func TestPrefixIndexThresholds(t *testing.T) {
	set := novelSet(t, 4000, 4)
	x, y := NewPrefixIndex(), NewIndex()
	for _, s := range set.Texts[:3000] {
		x.Add(s)
		y.Add(s)
	}
	for i, q := range set.Texts[3000:] {
		th := []float64{0.7, 0.5, 0.9, 0.3, 0.7}[i%5]
		g, w := x.Check(q, th), y.Check(q, th)
		if g.Novel != w.Novel || !g.Novel && g.Max != w.Max {
			t.Fatalf("%q at %v: prefix index %+v, exact index %+v", q, th, g, w)
		}
	}
}

// TestPrefixIndexLongTexts checks texts longer than the 65535 tokens a
// posting holds exactly, with thousands of a candidate's elements in each
// sketch bucket, against the exact engine.
func TestPrefixIndexLongTexts(t *testing.T) {
	if testing.Short() {
		t.Skip("long texts")
	}
	r := rand.New(rand.NewPCG(7, 7))
	words := func(n, vocab int) []string {
		w := make([]string, n)
		for i := range w {
			w[i] = fmt.Sprintf("w%d", r.IntN(vocab))
		}
		return w
	}
	edit := func(w []string, k int) []string {
		w = slices.Clone(w)
		for range k {
			w[r.IntN(len(w))] = "edited"
		}
		return w
	}
	long := words(70_000, 40)
	mid := words(20_000, 3000)
	texts := []string{
		strings.Join(long, " "),
		strings.Join(mid, " "),
		strings.Join(edit(long, 500), " "),   // near duplicate of the first
		strings.Join(words(70_000, 40), " "), // same vocabulary, other order
		strings.Join(edit(mid, 9000), " "),   // too far from the second
		strings.Join(edit(mid, 2000), " "),
		"a short one among them",
	}
	want := NewIndex().Dedup(texts, 0.7)
	got := NewPrefixIndex().Dedup(texts, 0.7)
	for i := range texts {
		w, g := want[i], got[i]
		if g.Novel != w.Novel || !g.Novel && g.Max != w.Max {
			t.Errorf("text %d: prefix index %+v, exact index %+v", i, g, w)
		}
	}
	if want[2].Novel || !want[4].Novel || want[5].Novel {
		t.Errorf("exact index %+v: the edits are not near or far as meant", want)
	}
}

// TestAddAllEqualsAdd loads 20k instructions of the benchmark set with
// AddAll (three rounds of parallel tokenizing where GOMAXPROCS is 2) and
// one by one with Add, into both kinds of index: every entry's text, every
// check of 500 other instructions and the nearest entries (by id) of 20
// of them must be the same.
func TestAddAllEqualsAdd(t *testing.T) {
	texts := novelSet(t, 20_500, 5).Texts
	entries, queries := texts[:20_000], texts[20_000:]
	for _, eng := range noveltyEngines {
		t.Run(eng.name, func(t *testing.T) {
			one, all := eng.new(), eng.new()
			for _, s := range entries {
				one.Add(s)
			}
			all.AddAll(entries)
			if one.Len() != all.Len() {
				t.Fatalf("AddAll: %d entries, Add: %d", all.Len(), one.Len())
			}
			for id := range one.Len() {
				if one.Text(id) != all.Text(id) {
					t.Fatalf("entry %d: %q, want %q", id, all.Text(id), one.Text(id))
				}
			}
			for _, q := range queries {
				if a, b := all.Check(q, 0.5), one.Check(q, 0.5); a != b {
					t.Errorf("Check(%q) after AddAll: %+v, after Add: %+v", q, a, b)
				}
			}
			// Which entry holds which tokens: the nearest entries by id.
			for _, q := range queries[:20] {
				a, _ := all.Similar(q, 5)
				b, _ := one.Similar(q, 5)
				if !slices.Equal(a, b) {
					t.Errorf("Similar(%q) after AddAll: %v, after Add: %v", q, a, b)
				}
			}
		})
	}
}
