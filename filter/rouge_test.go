package filter

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode"

	"github.com/ensinstruct/ensinstruct/internal/testdata"
)

// rougeVector is one line of shared/testdata/rouge/vectors.jsonl, produced
// by rouge_score 0.1.2 with a as the prediction and b as the target.
type rougeVector struct {
	A             string   `json:"a"`
	B             string   `json:"b"`
	Src           string   `json:"src"`
	TokensANoStem []string `json:"tokens_a_nostem"`
	TokensBNoStem []string `json:"tokens_b_nostem"`
	TokensAStem   []string `json:"tokens_a_stem"`
	TokensBStem   []string `json:"tokens_b_stem"`
	RougeLPNoStem float64  `json:"rougeL_p_nostem"`
	RougeLRNoStem float64  `json:"rougeL_r_nostem"`
	RougeLFNoStem float64  `json:"rougeL_f_nostem"`
	RougeLPStem   float64  `json:"rougeL_p_stem"`
	RougeLRStem   float64  `json:"rougeL_r_stem"`
	RougeLFStem   float64  `json:"rougeL_f_stem"`
	Rouge1FStem   float64  `json:"rouge1_f_stem"`
}

func TestRougeVectors(t *testing.T) {
	path := testdata.Path(t, "rouge/vectors.jsonl")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	n := 0
	for line := 1; sc.Scan(); line++ {
		var v rougeVector
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		n++
		at := func(what string) string { return formatVectorPos(path, line, v.Src, what) }

		aNo, bNo := Tokenize(v.A), Tokenize(v.B)
		aSt, bSt := TokenizeStem(v.A), TokenizeStem(v.B)
		checkTokens(t, at("Tokenize(a)"), aNo, v.TokensANoStem)
		checkTokens(t, at("Tokenize(b)"), bNo, v.TokensBNoStem)
		checkTokens(t, at("TokenizeStem(a)"), aSt, v.TokensAStem)
		checkTokens(t, at("TokenizeStem(b)"), bSt, v.TokensBStem)

		checkScore(t, at("RougeL nostem"), RougeL(aNo, bNo),
			Score{v.RougeLPNoStem, v.RougeLRNoStem, v.RougeLFNoStem})
		checkScore(t, at("RougeL stem"), RougeL(aSt, bSt),
			Score{v.RougeLPStem, v.RougeLRStem, v.RougeLFStem})
		if got := Rouge1(aSt, bSt).F; got != v.Rouge1FStem {
			t.Errorf("%s: F = %v (%#x), want %v (%#x)", at("Rouge1 stem"),
				got, math.Float64bits(got), v.Rouge1FStem, math.Float64bits(v.Rouge1FStem))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("%s: no vectors", path)
	}
	t.Logf("%d vectors checked", n)
}

func formatVectorPos(path string, line int, src, what string) string {
	return fmt.Sprintf("%s:%d (%s): %s", filepath.Base(path), line, src, what)
}

func checkTokens(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func checkScore(t *testing.T, what string, got, want Score) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

func TestTokenize(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     []string
		wantStem []string
	}{
		{"empty", "", nil, nil},
		{"only separators", " \t\n!?… ", nil, nil},
		{"basic", "Hello, World!", []string{"hello", "world"}, []string{"hello", "world"}},
		{"stem only longer than 3", "The cats are running", []string{"the", "cats", "are", "running"},
			[]string{"the", "cat", "are", "run"}},
		{"three chars not stemmed", "ies was", []string{"ies", "was"}, []string{"ies", "was"}},
		{"dotted capital I splits the token", "İstanbul", []string{"i", "stanbul"}, []string{"i", "stanbul"}},
		{"kelvin sign lowercases to k", "\u212Aelvin", []string{"kelvin"}, []string{"kelvin"}},
		{"other non-ASCII letters separate", "café naïve", []string{"caf", "na", "ve"}, []string{"caf", "na", "ve"}},
		{"CJK is dropped", "你好世界", nil, nil},
		{"digits", "In 1990s, 3.14", []string{"in", "1990s", "3", "14"}, []string{"in", "1990", "3", "14"}},
		{"underscore separates", "snake_case", []string{"snake", "case"}, []string{"snake", "case"}},
		{"stop marker", "Do it. |EoS|", []string{"do", "it", "eos"}, []string{"do", "it", "eos"}},
		{"stem not a prefix", "happy companies", []string{"happy", "companies"}, []string{"happi", "compani"}},
		{"invalid UTF-8", "ab\xffcd", []string{"ab", "cd"}, []string{"ab", "cd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkTokens(t, "Tokenize("+tt.in+")", Tokenize(tt.in), tt.want)
			checkTokens(t, "TokenizeStem("+tt.in+")", TokenizeStem(tt.in), tt.wantStem)
		})
	}
}

// TestLowerToASCII pins the only two non-ASCII characters whose lowercase
// (in Python 3.11, which produced the test vectors) contains a letter or
// digit that survives the [a-z0-9] filter.
func TestLowerToASCII(t *testing.T) {
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		got := string(appendLowerRune(nil, r))
		want := " "
		switch r {
		case '\u0130':
			want = "i "
		case '\u212A':
			want = "k"
		}
		if got != want {
			t.Errorf("appendLowerRune(%U) = %q, want %q", r, got, want)
		}
	}
}

func TestRougeScores(t *testing.T) {
	tests := []struct {
		name         string
		pred, target string
		rougeL       Score
		rouge1F      float64
	}{
		{
			// F is 2·p·r/(p+r) with p = 1/13 and r = 1/9, which is not
			// the same float as 2·1/(13+9) = 0.09090909090909091.
			name:    "F bits follow rouge_score",
			pred:    "Is there a difference between a computer’s CPU and its microprocessor? |EoS|",
			target:  "How can I learn to appreciate food more? |EoS|",
			rougeL:  Score{Precision: 1.0 / 13, Recall: 1.0 / 9, F: 0.09090909090909093},
			rouge1F: 0.09090909090909093,
		},
		{name: "both empty", pred: "", target: ""},
		{name: "empty prediction", pred: "", target: "hello world"},
		{name: "empty target", pred: "hello world", target: "..."},
		{name: "no overlap", pred: "a b", target: "c d"},
		{
			name: "identical", pred: "the cat sat", target: "The cat, sat!",
			rougeL: Score{1, 1, 1}, rouge1F: 1,
		},
		{
			// LCS "a b" is 2 of 3; unigrams all 3 match.
			name: "order matters for rouge-L only", pred: "a b c", target: "c a b",
			rougeL:  Score{2.0 / 3, 2.0 / 3, 2 * (2.0 / 3) * (2.0 / 3) / (2.0/3 + 2.0/3)},
			rouge1F: 1,
		},
		{
			// Unigram overlap counts min(count in pred, count in target).
			name: "repeated tokens", pred: "a a a b", target: "a b b",
			rougeL:  Score{2.0 / 4, 2.0 / 3, fmeasure(2.0/4, 2.0/3)},
			rouge1F: fmeasure(2.0/4, 2.0/3),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, q := Tokenize(tt.pred), Tokenize(tt.target)
			if got := RougeL(p, q); got != tt.rougeL {
				t.Errorf("RougeL = %+v, want %+v", got, tt.rougeL)
			}
			if got := Rouge1(p, q).F; got != tt.rouge1F {
				t.Errorf("Rouge1 F = %v, want %v", got, tt.rouge1F)
			}
		})
	}
	if f := RougeL(Tokenize(tests[0].pred), Tokenize(tests[0].target)).F; f == 2.0/22 {
		t.Errorf("RougeL F = 2·lcs/(m+n) = %v; rouge_score's 2pr/(p+r) differs in the last bit", f)
	}
}

// naiveLCS is the textbook full-table LCS.
func naiveLCS(a, b []string) int {
	table := make([][]int, len(a)+1)
	for i := range table {
		table[i] = make([]int, len(b)+1)
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			if a[i-1] == b[j-1] {
				table[i][j] = table[i-1][j-1] + 1
			} else {
				table[i][j] = max(table[i-1][j], table[i][j-1])
			}
		}
	}
	return table[len(a)][len(b)]
}

// naiveOverlap is Σ min(count in a, count in b) with maps.
func naiveOverlap(a, b []string) int {
	ca, cb := map[string]int{}, map[string]int{}
	for _, x := range a {
		ca[x]++
	}
	for _, x := range b {
		cb[x]++
	}
	n := 0
	for k, v := range ca {
		n += min(v, cb[k])
	}
	return n
}

func TestLCSAndOverlapRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := []string{"a", "b", "c", "d", "e", "f"}
	gen := func(n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = vocab[rng.IntN(len(vocab))]
		}
		return s
	}
	// Lengths around the stack-buffer and quadratic-path limits.
	sizes := []int{0, 1, 2, 5, 63, 64, 65, 127, 128, 129, 300}
	for _, n := range sizes {
		for _, m := range sizes {
			a, b := gen(n), gen(m)
			if got, want := LCS(a, b), naiveLCS(a, b); got != want {
				t.Errorf("LCS(len %d, len %d) = %d, want %d", n, m, got, want)
			}
			if got, want := LCS(b, a), naiveLCS(a, b); got != want {
				t.Errorf("LCS(len %d, len %d) = %d, want %d", m, n, got, want)
			}
			if got, want := rougeUnigramOverlap(a, b), naiveOverlap(a, b); got != want {
				t.Errorf("unigram overlap(len %d, len %d) = %d, want %d", n, m, got, want)
			}
		}
	}
}

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"", "Hello, World!", "İstanbul", "\u212Aelvin", "happy companies |EoS|", "ab\xffing", "ΣΑΣ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		plain, stemmed := Tokenize(s), TokenizeStem(s)
		if len(plain) != len(stemmed) {
			t.Fatalf("Tokenize gives %d tokens, TokenizeStem %d", len(plain), len(stemmed))
		}
		for i, tok := range plain {
			if !rougeValidToken(tok) {
				t.Fatalf("Tokenize token %d = %q, not [a-z0-9]+", i, tok)
			}
			st := stemmed[i]
			if !rougeValidToken(st) {
				t.Fatalf("TokenizeStem token %d = %q, not [a-z0-9]+", i, st)
			}
			want := tok
			if len(tok) > 3 {
				want = Stem(tok)
			}
			if st != want {
				t.Fatalf("TokenizeStem token %d = %q, want Stem(%q) = %q", i, st, tok, want)
			}
		}
		Stem(s) // must not panic on anything
	})
}

func FuzzRouge(f *testing.F) {
	f.Add("the cat sat on the mat", "a cat sat on a mat")
	f.Add("", "hello")
	f.Add("a a a b", "a b b")
	f.Fuzz(func(t *testing.T, x, y string) {
		for _, tok := range []func(string) []string{Tokenize, TokenizeStem} {
			a, b := tok(x), tok(y)
			for name, score := range map[string]func(a, b []string) Score{"RougeL": RougeL, "Rouge1": Rouge1} {
				ab, ba := score(a, b), score(b, a)
				for _, v := range []float64{ab.Precision, ab.Recall, ab.F} {
					if !(v >= 0 && v <= 1) {
						t.Fatalf("%s(%q, %q) = %+v, out of [0, 1]", name, a, b, ab)
					}
				}
				if ab.F != ba.F || ab.Precision != ba.Recall || ab.Recall != ba.Precision {
					t.Fatalf("%s not symmetric: (a, b) = %+v, (b, a) = %+v", name, ab, ba)
				}
			}
			if l, u := RougeL(a, b).F, Rouge1(a, b).F; l > u {
				t.Fatalf("RougeL F %v > Rouge1 F %v for %q, %q", l, u, a, b)
			}
		}
	})
}

// Instruction-length texts, as the novelty and consensus filters see them.
const (
	benchText1 = "Given the input, predict how much time it will take to get from the current location to the destination. " +
		"I live in London, UK and I am planning a trip to New York, USA. How long will it take to reach there?"
	benchText2 = "Write a short story about a happy family that is planning a surprising trip to the countryside, " +
		"and explain how they organized their journey, including the accommodations they considered."
)

func BenchmarkTokenize(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Tokenize(benchText1)
	}
}

func BenchmarkTokenizeStem(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		TokenizeStem(benchText1)
	}
}

func BenchmarkRougeL(b *testing.B) {
	x, y := TokenizeStem(benchText1), TokenizeStem(benchText2)
	b.ReportAllocs()
	for b.Loop() {
		RougeL(x, y)
	}
}

func BenchmarkRouge1(b *testing.B) {
	x, y := TokenizeStem(benchText1), TokenizeStem(benchText2)
	b.ReportAllocs()
	for b.Loop() {
		Rouge1(x, y)
	}
}

func ExampleRougeL() {
	pred := TokenizeStem("The cats are running happily.")
	target := TokenizeStem("A cat runs, happy!")
	fmt.Println(pred, target)
	fmt.Printf("%+v\n", RougeL(pred, target))
	// Output:
	// [the cat are run happili] [a cat run happi]
	// {Precision:0.4 Recall:0.5 F:0.4444444444444445}
}

func ExampleTokenize() {
	fmt.Printf("%q\n", Tokenize("Don't go to İstanbul, café-owner!"))
	// Output:
	// ["don" "t" "go" "to" "i" "stanbul" "caf" "owner"]
}
