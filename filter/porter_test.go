package filter

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/internal/testdata"
)

// TestStemNLTKWords checks Stem against every pair NLTK's PorterStemmer
// produced in NLTK_EXTENSIONS mode.
func TestStemNLTKWords(t *testing.T) {
	path := testdata.Path(t, "porter/words.tsv")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	pairs, failed := 0, 0
	for line := 1; sc.Scan(); line++ {
		word, want, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			t.Fatalf("%s:%d: no tab in %q", path, line, sc.Text())
		}
		pairs++
		if got := Stem(word); got != want {
			failed++
			if failed <= 20 {
				t.Errorf("%s:%d: Stem(%q) = %q, want %q", path, line, word, got, want)
			}
		}
		// The tokenizer's in-buffer path must agree with Stem.
		if got := string(appendStem([]byte("prefix"), []byte(word))); got != "prefix"+want {
			t.Errorf("%s:%d: appendStem(%q) = %q, want %q", path, line, word, got, "prefix"+want)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if pairs == 0 {
		t.Fatalf("%s: no pairs", path)
	}
	if failed > 0 {
		t.Errorf("%d of %d pairs differ", failed, pairs)
	}
	t.Logf("%d pairs checked", pairs)
}

func TestStem(t *testing.T) {
	tests := []struct {
		name, word, want string
	}{
		{"empty", "", ""},
		{"one char", "s", "s"},
		{"two chars not stemmed", "is", "is"},
		{"two chars lowercased", "AS", "as"},
		{"three chars stemmed", "ies", "i"},

		// NLTK's pool of irregular forms.
		{"pool skies", "skies", "sky"},
		{"pool sky", "sky", "sky"},
		{"pool dying", "dying", "die"},
		{"pool lying", "lying", "lie"},
		{"pool tying", "tying", "tie"},
		{"pool news", "news", "news"},
		{"pool innings", "innings", "inning"},
		{"pool outings", "outings", "outing"},
		{"pool cannings", "cannings", "canning"},
		{"pool howe", "howe", "howe"},
		{"pool proceed", "proceed", "proceed"},
		{"pool exceed", "exceed", "exceed"},
		{"pool succeed", "succeed", "succeed"},
		// NLTK looks the word up before lowercasing it.
		{"pool misses capitalized", "Sky", "ski"},

		// Step 1a and 1b NLTK extensions.
		{"ies four letters", "dies", "die"},
		{"ies longer", "flies", "fli"},
		{"ied four letters", "died", "die"},
		{"ied longer", "spied", "spi"},
		{"sses", "caresses", "caress"},
		{"ss", "caress", "caress"},
		{"s", "cats", "cat"},
		{"eed m>0", "agreed", "agre"},
		{"eed m=0", "feed", "feed"},
		{"ed no vowel", "bled", "bled"},
		{"ing no vowel", "sing", "sing"},
		{"ed at", "conflated", "conflat"},
		{"ed bl", "troubled", "troubl"},
		{"ed iz", "sized", "size"},
		{"ing double", "hopping", "hop"},
		{"ed double", "tanned", "tan"},
		{"ing double l", "falling", "fall"},
		{"ing double s", "hissing", "hiss"},
		{"ed double z", "fizzed", "fizz"},
		{"ing cvc", "filing", "file"},
		{"ing not cvc", "failing", "fail"},
		{"ing two-letter cvc", "aping", "ape"},

		// Step 1c: y → i only after a consonant that is not the first letter.
		{"y after consonant", "happy", "happi"},
		{"y after vowel", "enjoy", "enjoy"},
		{"y short", "spy", "spi"},
		{"y runs", "syzygy", "syzygi"},

		// Step 2 extensions.
		{"alli then step 2 again", "rationalli", "ration"},
		{"fulli", "hopefulli", "hope"},
		{"logi", "geologi", "geolog"},
		{"bli", "conformabli", "conform"},

		{"step 3 and 4", "generalizations", "gener"},
		{"step 4 ion needs s or t", "adoption", "adopt"},
		{"step 4 ion without s or t", "region", "region"},
		{"step 5a", "probate", "probat"},
		{"step 5a m=1 cvc keeps e", "rate", "rate"},
		{"step 5a m=1 not cvc", "cease", "ceas"},
		{"step 5b", "controlling", "control"},
		{"step 5b m=1", "roll", "roll"},

		{"uppercase", "Running", "run"},
		{"digits", "1990s", "1990"},
		{"long word", strings.Repeat("ab", 50) + "ing", strings.Repeat("ab", 50)},

		// Non-ASCII text is stemmed character by character.
		{"non-ASCII", "cafés", "café"},
		{"non-ASCII short", "éS", "és"},
		{"dotted capital I", "İs", "i\u0307s"},
		{"final sigma", "ΟΔΟΣ", "οδος"},
		{"sigma before a letter", "ΣΑΣ", "σας"},
		{"final sigma before a mark", "ΑΣ\u0301", "ας\u0301"},
		{"invalid UTF-8", "ab\xffing", "ab\ufffd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Stem(tt.word); got != tt.want {
				t.Errorf("Stem(%q) = %q, want %q", tt.word, got, tt.want)
			}
		})
	}
}

// TestStemSharesMemory checks that a stem that is a prefix of its word is
// returned without allocating.
func TestStemSharesMemory(t *testing.T) {
	for _, word := range []string{"running", "generalizations", "cat", "news"} {
		if n := testing.AllocsPerRun(100, func() { Stem(word) }); n != 0 {
			t.Errorf("Stem(%q) allocates %v times, want 0", word, n)
		}
	}
}

func BenchmarkStem(b *testing.B) {
	// The tokens rouge_score stems: longer than three characters.
	var words []string
	for _, w := range Tokenize(benchText1 + " " + benchText2) {
		if len(w) > 3 {
			words = append(words, w)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, w := range words {
			Stem(w)
		}
	}
}

func ExampleStem() {
	for _, w := range []string{"running", "happiness", "generalizations", "dying", "flies", "dies"} {
		fmt.Println(w, Stem(w))
	}
	// Output:
	// running run
	// happiness happi
	// generalizations gener
	// dying die
	// flies fli
	// dies die
}
