package filter

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ensinstruct/ensinstruct/internal/testdata"

	"github.com/ensinstruct/ensinstruct/seeds"
)

// noveltyOrderedScores is a JSON object of scores, keys in file order.
type noveltyOrderedScores struct {
	keys   []string
	scores map[string]float64
}

func (o *noveltyOrderedScores) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	o.scores = map[string]float64{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string)
		var f float64
		if err := dec.Decode(&f); err != nil {
			return err
		}
		if _, dup := o.scores[key]; !dup {
			o.keys = append(o.keys, key)
		}
		o.scores[key] = f
	}
	return nil
}

// noveltyRecord is one line of the reference's *_instructions.jsonl.
type noveltyRecord struct {
	Instruction  string               `json:"instruction"`
	MostSimilar  noveltyOrderedScores `json:"most_similar"`
	AvgSimilarty float64              `json:"avg_similarity_score"`
}

// TestIndexReplayReference replays the reference's sample run: starting
// from the seeds of one type, every stored instruction, in order, must get
// the stored most_similar (keys, scores and order) and avg_similarity_score
// from Similar, must pass the novelty check, and is then added.
func TestIndexReplayReference(t *testing.T) {
	seedPath := testdata.Path(t, "self-instruct/seed_tasks.jsonl")
	tasks, err := seeds.LoadFile(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	typeA, typeB := seeds.Split(tasks)
	if len(typeA) != 125 || len(typeB) != 50 {
		t.Fatalf("seed split = %d A, %d B; want 125, 50", len(typeA), len(typeB))
	}
	for _, tc := range []struct {
		file  string
		seeds []seeds.Task
	}{
		{"io_instructions.jsonl", typeA},
		{"o_instructions.jsonl", typeB},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(testdata.Path(t, "ensemble-instruct/"+tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			x := NewIndex()
			for _, s := range tc.seeds {
				x.Add(s.Instruction)
			}
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<24)
			var records, mapOK, orderOK, meanOK int
			for sc.Scan() {
				var rec noveltyRecord
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					t.Fatalf("line %d: %v", records+1, err)
				}
				records++
				top, mean := x.Similar(rec.Instruction, 10)
				got := noveltyOrderedScores{scores: map[string]float64{}}
				for _, nb := range top {
					if _, dup := got.scores[nb.Text]; !dup {
						got.keys = append(got.keys, nb.Text)
					}
					got.scores[nb.Text] = nb.Score
				}
				if noveltyMapsEqual(got.scores, rec.MostSimilar.scores) {
					mapOK++
				} else {
					t.Errorf("line %d: most_similar differs:\n got %v\nwant %v", records, got.keys, rec.MostSimilar.keys)
					for _, k := range rec.MostSimilar.keys {
						if g, ok := got.scores[k]; !ok || g != rec.MostSimilar.scores[k] {
							t.Logf("  want %q: %v (got %v, %v)", k, rec.MostSimilar.scores[k], g, ok)
						}
					}
				}
				if slices.Equal(got.keys, rec.MostSimilar.keys) {
					orderOK++
				} else {
					t.Logf("line %d: most_similar order differs:\n got %q\nwant %q", records, got.keys, rec.MostSimilar.keys)
				}
				if mean == rec.AvgSimilarty {
					meanOK++
				} else {
					t.Errorf("line %d: avg_similarity_score = %v, want %v", records, mean, rec.AvgSimilarty)
				}
				d := x.Check(rec.Instruction, 0.7)
				if !d.Novel || len(top) == 0 || d.Max != top[0].Score {
					t.Errorf("line %d: Check(0.7) = %+v, want novel with Max %v", records, d, top[0].Score)
				}
				x.Add(rec.Instruction)
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d records; most_similar maps equal %d, in order %d; averages equal %d",
				tc.file, records, mapOK, orderOK, meanOK)
		})
	}
}

func noveltyMapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// noveltyBrute is the reference the index must agree with: every text's
// tokens, each candidate compared with all of them, by dynamic-program
// LCS or, with fast set, by the bit-parallel LCS (itself checked against
// the dynamic program in lcs_test.go) for the larger tests.
type noveltyBrute struct {
	fast   bool
	texts  []string
	tokens [][]int32
	vocab  map[string]int32
	pat    bitLCSPattern
}

func (b *noveltyBrute) encode(text string) []int32 {
	if b.vocab == nil {
		b.vocab = map[string]int32{}
	}
	var out []int32
	for _, tok := range Tokenize(text) {
		id, ok := b.vocab[tok]
		if !ok {
			id = int32(len(b.vocab))
			b.vocab[tok] = id
		}
		out = append(out, id)
	}
	return out
}

func (b *noveltyBrute) add(text string) {
	b.texts = append(b.texts, text)
	b.tokens = append(b.tokens, b.encode(text))
}

// scores returns the Rouge-L F of text against every entry.
func (b *noveltyBrute) scores(text string) []float64 {
	c := b.encode(text)
	out := make([]float64, len(b.tokens))
	if b.fast {
		b.pat.set(c, len(b.vocab))
		defer b.pat.reset()
	}
	for i, e := range b.tokens {
		var lcs int
		if b.fast {
			lcs = b.pat.lcs(e)
		} else {
			lcs = noveltyDPLCS(c, e)
		}
		out[i] = scoreFromOverlap(lcs, len(c), len(e)).F
	}
	return out
}

// check is the brute-force novelty decision: the exact maximum, novel
// when it is at most threshold (or when there is nothing to compare).
func (b *noveltyBrute) check(text string, threshold float64) (novel bool, maxScore float64, scores []float64) {
	scores = b.scores(text)
	for _, f := range scores {
		maxScore = max(maxScore, f)
	}
	return len(scores) == 0 || maxScore <= threshold, maxScore, scores
}

// noveltyCheckAgainst fails t unless got is what the brute force says.
func noveltyCheckAgainst(t *testing.T, what string, got Novelty, novel bool, maxScore float64, threshold float64) {
	t.Helper()
	if !got.Exact && novel && got.Novel && got.Max == 0 {
		return // a prefix index does not score novel candidates
	}
	if got.Novel != novel || got.Max != maxScore || !got.Exact {
		t.Fatalf("%s: got %+v, want Novel %v with the exact maximum %v (threshold %v)", what, got, novel, maxScore, threshold)
	}
}

// noveltyTexts generates n texts for the randomized tests: words from a
// vocabulary of the given size, drawn with a skew so that some words are
// everywhere and many are rare, lengths from 0 to past 128 tokens,
// punctuation and case that the tokenizer folds, exact duplicates and
// small edits of earlier texts.
func noveltyTexts(r *rand.Rand, n, vocab int) []string {
	words := make([]string, vocab)
	for i := range words {
		words[i] = fmt.Sprintf("w%d", i)
	}
	word := func() string {
		// Skewed: the square of a uniform variate favours low indexes.
		f := r.Float64()
		return words[int(f*f*float64(vocab))]
	}
	length := func() int {
		switch k := r.IntN(40); {
		case k == 0:
			return 0
		case k == 1:
			return 1
		case k == 2:
			return 60 + r.IntN(10) // around one 64-bit word
		case k == 3:
			return 125 + r.IntN(10) // around two words
		case k == 4:
			return 190 + r.IntN(10)
		case k == 5:
			return 250 + r.IntN(60) // past the 255 elements of the counters
		default:
			return 2 + r.IntN(20)
		}
	}
	out := make([]string, 0, n)
	for len(out) < n {
		switch k := r.IntN(10); {
		case k == 0 && len(out) > 0:
			out = append(out, out[r.IntN(len(out))]) // exact duplicate
		case k <= 2 && len(out) > 0:
			w := strings.Fields(out[r.IntN(len(out))])
			for range 1 + r.IntN(2) {
				if len(w) == 0 {
					w = append(w, word())
					continue
				}
				switch i := r.IntN(len(w)); r.IntN(3) {
				case 0:
					w[i] = word()
				case 1:
					w = slices.Insert(w, i, word())
				default:
					w = slices.Delete(w, i, i+1)
				}
			}
			out = append(out, strings.Join(w, " "))
		default:
			w := make([]string, length())
			for i := range w {
				w[i] = word()
				switch r.IntN(20) {
				case 0:
					w[i] = strings.ToUpper(w[i]) + ","
				case 1:
					w[i] += "."
				}
			}
			out = append(out, strings.Join(w, " "))
		}
	}
	return out
}

// noveltyEngines are the two kinds of index, which must decide alike.
var noveltyEngines = []struct {
	name string
	new  func() *Index
}{
	{"exact", NewIndex},
	{"prefix", NewPrefixIndex},
}

// TestIndexCheckMatchesBruteForce runs the check-then-add loop on random
// corpora and compares every decision with brute force, at the reference
// threshold, at random thresholds and at thresholds equal to a score that
// occurs (where "above" and "at" must be told apart exactly).
func TestIndexCheckMatchesBruteForce(t *testing.T) {
	seeds := 16
	if testing.Short() {
		seeds = 4
	}
	for seed := range uint64(seeds) {
		vocab := []int{3, 12, 40, 400}[seed%4]
		for _, eng := range noveltyEngines {
			t.Run(fmt.Sprintf("%s/seed=%d,vocab=%d", eng.name, seed, vocab), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 99))
				texts := noveltyTexts(r, 250, vocab)
				x := eng.new()
				b := noveltyBrute{fast: seed%2 == 1} // half the seeds by dynamic program
				for i, text := range texts {
					novel, maxScore, scores := b.check(text, 0.7)
					thresholds := []float64{0.7, 1, r.Float64()}
					if len(scores) > 0 {
						// At a score that occurs, and just below it.
						th := scores[r.IntN(len(scores))]
						thresholds = append(thresholds, th, math.Nextafter(th, -1))
					}
					for _, th := range thresholds {
						novel := len(scores) == 0 || maxScore <= th
						noveltyCheckAgainst(t, fmt.Sprintf("text %d at %v", i, th), x.Check(text, th), novel, maxScore, th)
					}
					if novel {
						x.Add(text)
						b.add(text)
					}
				}
				if x.Len() != len(b.texts) {
					t.Fatalf("Len = %d, want %d", x.Len(), len(b.texts))
				}
			})
		}
	}
}

// TestIndexDedupMatchesSequential compares Dedup, which checks batches in
// parallel, with the sequential brute-force loop, on streams long enough
// for several batches and for the common elements to be chosen again, and
// checks that deduplicating a stream in parts equals one call.
func TestIndexDedupMatchesSequential(t *testing.T) {
	n := 1500
	if testing.Short() {
		n = 600
	}
	for seed := range uint64(4) {
		vocab := []int{20, 300, 2000, 0}[seed]
		for _, eng := range noveltyEngines {
			t.Run(fmt.Sprintf("%s/seed=%d,vocab=%d", eng.name, seed, vocab), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 5))
				var texts []string
				if vocab == 0 {
					texts = noveltySynthetic(2*n, seed) // the benchmark's data
				} else {
					texts = noveltyTexts(r, n, vocab)
				}
				// Start from a few "seeds", as the pipeline does.
				start := texts[:20]
				texts = texts[20:]
				b := noveltyBrute{fast: true}
				x, y := eng.new(), eng.new()
				for _, s := range start {
					b.add(s)
					x.Add(s)
					y.Add(s)
				}
				got := x.Dedup(texts, 0.7)
				var parts []Novelty
				for lo := 0; lo < len(texts); {
					hi := min(len(texts), lo+1+r.IntN(700))
					parts = append(parts, y.Dedup(texts[lo:hi], 0.7)...)
					lo = hi
				}
				for i, text := range texts {
					novel, maxScore, _ := b.check(text, 0.7)
					noveltyCheckAgainst(t, fmt.Sprintf("text %d", i), got[i], novel, maxScore, 0.7)
					noveltyCheckAgainst(t, fmt.Sprintf("text %d in parts", i), parts[i], novel, maxScore, 0.7)
					if novel {
						b.add(text)
					}
				}
				for _, idx := range []*Index{x, y} {
					if idx.Len() != len(b.texts) {
						t.Fatalf("Len = %d, want %d", idx.Len(), len(b.texts))
					}
					for i, text := range b.texts {
						if idx.Text(i) != text {
							t.Fatalf("Text(%d) = %q, want %q", i, idx.Text(i), text)
						}
					}
				}
			})
		}
	}
}

// TestIndexThresholdIsStrict builds pairs whose score is exactly a given
// value: a score equal to the threshold is novel, one ulp above it is not.
func TestIndexThresholdIsStrict(t *testing.T) {
	letters := strings.Fields("a b c d e f g h i j k l m n o p q r s t")
	for _, tc := range []struct{ lcs, lc, le int }{
		{7, 10, 10},  // P = R = 0.7
		{7, 7, 13},   // 2·7/20 = 0.7, from P = 1 and R = 7/13
		{14, 20, 20}, // 0.7 again, other lengths
		{1, 1, 1},
		{3, 4, 5},
	} {
		entry := strings.Join(letters[:tc.le], " ")
		// The candidate keeps the first lcs tokens of the entry and fills up
		// with tokens the entry does not have.
		cand := slices.Clone(letters[:tc.lcs])
		for i := 0; len(cand) < tc.lc; i++ {
			cand = append(cand, fmt.Sprintf("x%d", i))
		}
		text := strings.Join(cand, " ")
		f := scoreFromOverlap(tc.lcs, tc.lc, tc.le).F
		x := NewIndex()
		x.Add("unrelated words only")
		x.Add(entry)
		t.Run(fmt.Sprintf("%d/%d/%d=%v", tc.lcs, tc.lc, tc.le, f), func(t *testing.T) {
			if d := x.Check(text, f); !d.Novel || d.Max != f {
				t.Errorf("Check at its own score %v = %+v, want novel with Max %v", f, d, f)
			}
			below := math.Nextafter(f, 0)
			if d := x.Check(text, below); d.Novel || d.Max != f {
				t.Errorf("Check one ulp below, at %v = %+v, want rejected with Max %v", below, d, f)
			}
			if f == 1 {
				return // a duplicate scores 1, not above
			}
			if got := x.Dedup([]string{text, text}, f); !got[0].Novel || got[1].Novel || got[1].Max != 1 {
				t.Errorf("Dedup at %v = %+v, want the first kept (Max %v), its duplicate rejected (Max 1)", f, got, f)
			}
		})
	}
	// The reference keeps a score of exactly 0.7.
	if f := scoreFromOverlap(7, 10, 10).F; f == 0.7 {
		x := NewIndex()
		x.Add("a b c d e f g h i j")
		if d := x.Check("a b c d e f g x y z", 0.7); !d.Novel || d.Max != 0.7 {
			t.Errorf("score 0.7 at threshold 0.7: %+v, want novel", d)
		}
	}
}

func TestIndexEdgeCases(t *testing.T) {
	var x Index // the zero value works
	if d := x.Check("anything", 0.7); !d.Novel || d.Max != 0 {
		t.Errorf("empty index: Check = %+v, want novel, Max 0", d)
	}
	if d := x.Check("anything", -1); !d.Novel {
		t.Errorf("empty index, negative threshold: Check = %+v, want novel", d)
	}
	if top, mean := x.Similar("anything", 10); top != nil || mean != 0 {
		t.Errorf("empty index: Similar = %v, %v; want nil, 0", top, mean)
	}
	if id := x.Add("The cat sat."); id != 0 || x.Len() != 1 || x.Text(0) != "The cat sat." {
		t.Fatalf("Add = %d, Len = %d, Text(0) = %q", id, x.Len(), x.Text(0))
	}
	x.Add("")
	x.Add("!!!")
	for _, tc := range []struct {
		text      string
		threshold float64
		want      Novelty
	}{
		{"", 0.7, Novelty{true, 0, true}},   // no tokens: every score is 0
		{"...", 0, Novelty{true, 0, true}},  // 0 is not above 0
		{"", -0.5, Novelty{false, 0, true}}, // every entry scores 0 > -0.5
		{"the cat sat", 0.7, Novelty{false, 1, true}},
		{"THE CAT, SAT!", 0.99, Novelty{false, 1, true}},
		{"cat", 1, Novelty{true, 0.5, true}},
		{"dog", 1, Novelty{true, 0, true}},
	} {
		if got := x.Check(tc.text, tc.threshold); got != tc.want {
			t.Errorf("Check(%q, %v) = %+v, want %+v", tc.text, tc.threshold, got, tc.want)
		}
	}
	if got := x.Dedup(nil, 0.7); len(got) != 0 {
		t.Errorf("Dedup(nil) = %v", got)
	}
	top, mean := x.Similar("cat sat", 2)
	if len(top) != 2 || top[0].ID != 0 || top[0].Score != 0.8 || top[1].Score != 0 {
		t.Errorf("Similar top = %+v", top)
	}
	if want := 0.8 / 3; mean != want {
		t.Errorf("Similar mean = %v, want %v", mean, want)
	}
	if top, _ := x.Similar("cat", 99); len(top) != 3 {
		t.Errorf("Similar with k > Len returned %d entries, want 3", len(top))
	}
	if top, _ := x.Similar("cat", -1); len(top) != 0 {
		t.Errorf("Similar with k < 0 returned %d entries, want 0", len(top))
	}
	// A candidate too long for the 16-bit shared counters is compared
	// with every entry.
	long := strings.Repeat("cat ", math.MaxUint16+10)
	want := scoreFromOverlap(1, math.MaxUint16+10, 3).F // against "The cat sat."
	if got := x.Check(long, 1); !got.Novel || got.Max != want {
		t.Errorf("Check(very long text) = %+v, want novel with Max %v", got, want)
	}
	if st := x.Stats(); st.Queries == 0 || st.LCS > st.Pairs {
		t.Errorf("Stats = %+v", st)
	}
}

// TestIndexSimilarMatchesBruteForce checks Similar's scores, top-k and
// mean against brute force on random corpora.
func TestIndexSimilarMatchesBruteForce(t *testing.T) {
	for seed := range uint64(6) {
		r := rand.New(rand.NewPCG(seed, 11))
		texts := noveltyTexts(r, 300, []int{5, 50, 500}[seed%3])
		x := NewIndex()
		var b noveltyBrute
		for i, text := range texts {
			if i%3 == 0 && x.Len() > 0 {
				k := r.IntN(15)
				top, mean := x.Similar(text, k)
				scores := b.scores(text)
				if want := noveltyNumpySum(scores) / float64(len(scores)); mean != want {
					t.Fatalf("seed %d text %d: mean = %v, want %v", seed, i, mean, want)
				}
				sorted := slices.Clone(scores)
				slices.SortFunc(sorted, func(a, b float64) int { return cmp.Compare(b, a) })
				if len(top) != min(k, len(scores)) {
					t.Fatalf("seed %d text %d: %d results for k=%d", seed, i, len(top), k)
				}
				seen := map[int]bool{}
				for j, nb := range top {
					if nb.Score != sorted[j] || scores[nb.ID] != nb.Score || nb.Text != b.texts[nb.ID] || seen[nb.ID] {
						t.Fatalf("seed %d text %d: top[%d] = %+v, want score %v (entry score %v)", seed, i, j, nb, sorted[j], scores[nb.ID])
					}
					seen[nb.ID] = true
				}
			}
			x.Add(text)
			b.add(text)
		}
	}
}

// TestNoveltyArgsortMatchesNumpy compares noveltyArgsort with
// numpy 1.24's np.argsort(v) (introsort) and noveltyAheapsort with
// np.argsort(v, kind="heapsort") on arrays full of ties, v[i] =
// (31i² + 7i) mod 5: the first 12 indexes and a checksum Σ (i+1)·p[i].
func TestNoveltyArgsortMatchesNumpy(t *testing.T) {
	vals := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64((i*i*31 + 7*i) % 5)
		}
		return v
	}
	checksum := func(p []int) int {
		s := 0
		for i, x := range p {
			s += (i + 1) * x
		}
		return s
	}
	for _, tc := range []struct {
		kind  string
		n     int
		sum   int
		first []int
	}{
		{"quicksort", 1, 0, []int{0}},
		{"quicksort", 2, 2, []int{0, 1}},
		{"quicksort", 16, 1152, []int{0, 3, 5, 8, 10, 13, 15, 1, 2, 6, 7, 11}},
		{"quicksort", 17, 1270, []int{0, 13, 10, 15, 5, 8, 3, 6, 7, 2, 11, 12}},
		{"quicksort", 54, 37913, []int{0, 50, 48, 45, 43, 40, 38, 35, 33, 30, 28, 25}},
		{"quicksort", 100, 247607, []int{0, 50, 65, 28, 30, 63, 33, 35, 60, 93, 38, 40}},
		{"quicksort", 277, 5136517, []int{0, 135, 275, 140, 143, 145, 148, 150, 133, 153, 158, 160}},
		{"quicksort", 1000, 244045902, []int{0, 645, 340, 930, 338, 335, 648, 333, 650, 330, 328, 653}},
		{"heapsort", 1, 0, []int{0}},
		{"heapsort", 2, 2, []int{0, 1}},
		{"heapsort", 16, 1005, []int{5, 8, 15, 13, 10, 0, 3, 2, 11, 6, 1, 12}},
		{"heapsort", 17, 1225, []int{5, 8, 13, 15, 10, 0, 3, 2, 12, 11, 1, 16}},
		{"heapsort", 54, 39198, []int{3, 48, 38, 33, 13, 45, 50, 0, 8, 10, 15, 28}},
		{"heapsort", 100, 252723, []int{13, 33, 68, 28, 43, 98, 18, 3, 15, 58, 25, 85}},
		{"heapsort", 277, 5302634, []int{65, 55, 185, 160, 108, 120, 245, 93, 173, 80, 73, 135}},
		{"heapsort", 1000, 247021466, []int{575, 873, 675, 143, 430, 33, 738, 168, 625, 288, 263, 208}},
	} {
		v := vals(tc.n)
		var p []int
		if tc.kind == "quicksort" {
			p = noveltyArgsort(v)
		} else {
			p = make([]int, tc.n)
			for i := range p {
				p[i] = i
			}
			noveltyAheapsort(v, p)
		}
		if got := checksum(p); got != tc.sum || !slices.Equal(p[:len(tc.first)], tc.first) {
			t.Errorf("%s n=%d: checksum %d, first %v; numpy: %d, %v", tc.kind, tc.n, got, p[:len(tc.first)], tc.sum, tc.first)
		}
		if !slices.IsSortedFunc(p, func(a, b int) int { return cmp.Compare(v[a], v[b]) }) {
			t.Errorf("%s n=%d: not sorted", tc.kind, tc.n)
		}
	}
}

// TestNoveltyArgsortTop checks that sorting only what the last k
// positions need leaves them as the full sort does.
func TestNoveltyArgsortTop(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		n := r.IntN(3000)
		v := make([]float64, n)
		distinct := 1 + r.IntN(20)
		for i := range v {
			v[i] = float64(r.IntN(distinct)) / 7
		}
		full := noveltyArgsort(v)
		for _, k := range []int{0, 1, 10, n / 2, n} {
			k = min(k, n)
			if got := noveltyArgsortTop(v, k); !slices.Equal(got[n-k:], full[n-k:]) {
				t.Fatalf("n=%d k=%d: top %v, full sort %v", n, k, got[n-k:], full[n-k:])
			}
		}
	}
}

// TestNoveltyNumpySumMatchesNumpy compares the mean with numpy 1.24's
// np.mean on v[i] = (7919i mod 1000)/997 + 1/(i+3), across the block
// sizes of numpy's pairwise summation and of its 8192-element buffer; the
// plain sum differs in the last bits for the longer ones.
func TestNoveltyNumpySumMatchesNumpy(t *testing.T) {
	for _, tc := range []struct {
		n         int
		mean, sum float64 // np.mean, Python's sum
	}{
		{1, 0.3333333333333333, 0.3333333333333333},
		{5, 0.8584911878492619, 4.2924559392463095},
		{7, 0.8058434373415028, 5.640904061390519},
		{8, 0.7719008712645874, 6.175206970116697},
		{9, 0.7354639153953764, 6.619175238558386},
		{15, 0.6304736787076453, 9.457105180614677},
		{16, 0.6437514264018133, 10.300022822429009},
		{17, 0.6505160444965634, 11.058772756441574},
		{127, 0.5279466457125861, 67.04922400549843},
		{128, 0.5294692324179663, 67.77206174949967},
		{129, 0.5303379615690021, 68.41359704240128},
		{130, 0.5305679290299908, 68.9738307738988},
		{255, 0.5208934698423141, 132.82783480979012},
		{256, 0.5202255816137711, 133.1777488931254},
		{300, 0.5179703427132087, 155.3911028139627},
		{1000, 0.5069904768926227, 506.9904768926224},
		{4097, 0.5026643632272293, 2059.4158961419557},
		{8192, 0.5019756741953889, 4112.184723008614},
		{8193, 0.5019692656021462, 4112.634193078372},
		{20000, 0.5014520504375678, 10029.041008751365},
		{100003, 0.5011115005119553, 50112.65338569695},
	} {
		v := make([]float64, tc.n)
		plain := 0.0
		for i := range v {
			v[i] = float64(i*7919%1000)/997.0 + 1.0/float64(i+3)
			plain += v[i]
		}
		if plain != tc.sum {
			t.Fatalf("n=%d: the test vector differs from numpy's input (sum %v, want %v)", tc.n, plain, tc.sum)
		}
		if got := noveltyNumpySum(v) / float64(tc.n); got != tc.mean {
			t.Errorf("n=%d: mean %v, numpy %v", tc.n, got, tc.mean)
		}
	}
}

// TestIndexRareOnlyRows covers a search where only entries sharing a rare
// element can beat the best score: the rows of the length class without
// such an entry are skipped, and the result must not change.
func TestIndexRareOnlyRows(t *testing.T) {
	x := NewIndex()
	var b noveltyBrute
	text := func(i int) string {
		w := make([]string, 10)
		for j := range w {
			w[j] = fmt.Sprintf("t%dx%d", i, j)
		}
		return strings.Join(w, " ")
	}
	for i := range 300 {
		x.Add(text(i))
		b.add(text(i))
	}
	for _, cand := range []string{
		"t150x0 t150x1 t150x2 t150x3 t150x4 t150x5 t150x6 new words here",
		"t290x9 t1x1 t150x1 t299x3",
		"t0x0 t0x1 t0x2 t0x3 t0x4 t0x5 t0x6 t0x7 t0x8 t0x9", // a duplicate of a common-only entry
	} {
		for _, th := range []float64{0.7, 1} {
			novel, maxScore, _ := b.check(cand, th)
			noveltyCheckAgainst(t, fmt.Sprintf("%q at %v", cand, th), x.Check(cand, th), novel, maxScore, th)
		}
	}
}

// TestIndexConcurrentReads runs Check and Similar from several goroutines
// at once (under -race in CI) and compares them with sequential calls.
func TestIndexConcurrentReads(t *testing.T) {
	for _, eng := range noveltyEngines {
		t.Run(eng.name, func(t *testing.T) { testIndexConcurrentReads(t, eng.new) })
	}
}

func testIndexConcurrentReads(t *testing.T, newIndex func() *Index) {
	texts := noveltySynthetic(1500, 7)
	x := newIndex()
	x.Dedup(texts[:1000], 0.7)
	queries := texts[1000:]
	// Two thresholds: the prefix index builds its lists again for the
	// lower one while other checks wait.
	th := func(i int) float64 { return []float64{0.7, 0.6}[i%2] }
	want := make([]Novelty, len(queries))
	wantMean := make([]float64, len(queries))
	for i, q := range queries {
		want[i] = x.Check(q, th(i))
		_, wantMean[i] = x.Similar(q, 3)
	}
	y := newIndex()
	y.Dedup(texts[:1000], 0.7)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for g := range errs {
		wg.Go(func() {
			for i := g; i < len(queries); i += 2 {
				if got := y.Check(queries[i], th(i)); got != want[i] {
					errs[g] = fmt.Errorf("Check(%q) = %+v, want %+v", queries[i], got, want[i])
					return
				}
				if _, mean := y.Similar(queries[i], 3); mean != wantMean[i] {
					errs[g] = fmt.Errorf("Similar(%q) mean = %v, want %v", queries[i], mean, wantMean[i])
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func ExampleIndex() {
	x := NewIndex()
	for _, seed := range []string{
		"Give three tips for staying healthy.",
		"Write a haiku about the sea.",
	} {
		x.Add(seed)
	}
	for i, d := range x.Dedup([]string{
		"Give three tips for staying healthy at work.", // too close to a seed
		"Translate the sentence into French.",
		"Translate this sentence into French.", // too close to the one before
	}, 0.7) {
		fmt.Printf("%d novel=%v max=%.3f\n", i, d.Novel, d.Max)
	}
	top, mean := x.Similar("Write a poem about the sea.", 2)
	for _, nb := range top {
		fmt.Printf("%.3f %s\n", nb.Score, nb.Text)
	}
	fmt.Printf("mean %.3f over %d entries\n", mean, x.Len())
	// Output:
	// 0 novel=false max=0.857
	// 1 novel=true max=0.182
	// 2 novel=false max=0.800
	// 0.833 Write a haiku about the sea.
	// 0.182 Translate the sentence into French.
	// mean 0.338 over 3 entries
}
