package novelgen

import (
	"slices"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/internal/testdata"
)

func TestGenerate(t *testing.T) {
	m, err := Load(testdata.Root(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Words() < 10_000 {
		t.Errorf("%d words in the model, want the corpus's ten thousand or more", m.Words())
	}
	a := m.Generate(20_000, 1)
	m2, err := Load(testdata.Root(t))
	if err != nil {
		t.Fatal(err)
	}
	if b := m2.Generate(20_000, 1); !slices.Equal(a.Texts, b.Texts) || a.Dups != b.Dups {
		t.Fatal("the same corpus and seed gave other instructions")
	}
	if c := m.Generate(100, 2); slices.Equal(c.Texts, a.Texts[:100]) {
		t.Error("another seed gave the same instructions")
	}
	words, vocab := 0, map[string]bool{}
	for _, s := range a.Texts {
		f := strings.Fields(s)
		words += len(f)
		for _, w := range f {
			vocab[w] = true
		}
		if strings.Contains(s, "|EoS|") {
			t.Fatalf("%q holds the reference's end marker", s)
		}
	}
	if mean := float64(words) / float64(len(a.Texts)); mean < 12 || mean > 20 {
		t.Errorf("%.1f words on average, want about 16", mean)
	}
	if share := float64(a.Dups) / float64(len(a.Texts)); share < 0.18 || share > 0.26 {
		t.Errorf("%.0f%% planted near duplicates, want about 22%%", 100*share)
	}
	// Made-up words beyond the corpus: the vocabulary grows with the set.
	small := map[string]bool{}
	for _, s := range a.Texts[:2000] {
		for _, w := range strings.Fields(s) {
			small[w] = true
		}
	}
	if len(vocab) < len(small)*2 {
		t.Errorf("vocabulary %d words at 20k instructions, %d at 2k: want it to keep growing", len(vocab), len(small))
	}
}

func TestMadeUp(t *testing.T) {
	seen := map[string]int{}
	for k := range 50_000 {
		w := madeUp(k)
		if j, ok := seen[w]; ok {
			t.Fatalf("madeUp(%d) = madeUp(%d) = %q", k, j, w)
		}
		seen[w] = k
	}
}
