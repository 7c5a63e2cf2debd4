package filter

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ensinstruct/ensinstruct/internal/testdata"
)

var updateBrute = flag.Bool("update-brute", false, "recompute testdata/novelty/brute-100k.txt by brute force (minutes)")

// The stored brute-force result: which of the benchmark set's first 100k
// instructions (seed 1) a plain comparison with every kept one drops at
// 0.7. It took 3.9e9 LCS to compute, so it is computed once, with
// -update-brute, and the test checks both engines against it.
const (
	bruteN      = 100_000
	bruteSeed   = 1
	bruteThresh = 0.7
	bruteFile   = "novelty/brute-100k.txt"
)

// TestDedupStoredBruteForce dedups the 100k set with both engines and
// compares every decision with the stored brute-force result.
func TestDedupStoredBruteForce(t *testing.T) {
	texts := novelSet(t, bruteN, bruteSeed).Texts
	sum := textsDigest(texts)
	path := filepath.Join(testdata.Root(t), bruteFile)
	if *updateBrute {
		writeBrute(t, path, sum, bruteDedup(texts, bruteThresh))
	}
	dropped, storedSum := readBrute(t, path)
	if storedSum != sum {
		t.Fatalf("%s was computed for other texts (digest %s, the generator now gives %s): run go test ./filter -run %s -args -update-brute", path, storedSum, sum, t.Name())
	}
	for _, eng := range noveltyEngines {
		t.Run(eng.name, func(t *testing.T) {
			got := eng.new().Dedup(texts, bruteThresh)
			bad := 0
			for i, d := range got {
				if d.Novel == dropped[i] {
					if bad++; bad <= 5 {
						t.Errorf("text %d %q: novel %v, brute force %v", i, texts[i], d.Novel, !dropped[i])
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d decisions differ from brute force", bad, len(texts))
			}
		})
	}
}

// textsDigest identifies the generated set.
func textsDigest(texts []string) string {
	h := sha256.New()
	for _, s := range texts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// bruteDedup is the decision by brute force: each text against every text
// kept before it, all of them, with no pruning. The kept texts are split
// between the cores for each text; decisions stay in order.
func bruteDedup(texts []string, threshold float64) []bool {
	var b noveltyBrute
	toks := make([][]int32, len(texts))
	for i, s := range texts {
		toks[i] = b.encode(s)
	}
	vocab := len(b.vocab)
	workers := runtime.GOMAXPROCS(0)
	pats := make([]bitLCSPattern, workers)
	var kept [][]int32
	dropped := make([]bool, len(texts))
	for i, q := range toks {
		var above atomic.Bool
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				p := &pats[w]
				p.set(q, vocab)
				defer p.reset()
				for k := w; k < len(kept) && !above.Load(); k += workers {
					e := kept[k]
					if scoreFromOverlap(p.lcs(e), len(q), len(e)).F > threshold {
						above.Store(true)
					}
				}
			})
		}
		wg.Wait()
		if dropped[i] = above.Load(); !dropped[i] {
			kept = append(kept, q)
		}
	}
	return dropped
}

func writeBrute(t *testing.T, path, sum string, dropped []bool) {
	var b strings.Builder
	n := 0
	for _, d := range dropped {
		if d {
			n++
		}
	}
	fmt.Fprintf(&b, "# Brute-force novelty decisions (Rouge-L F > %v against every kept text) for the first %d\n", bruteThresh, bruteN)
	fmt.Fprintf(&b, "# instructions of internal/novelgen's set, seed %d, from testdata/. Regenerate with\n", bruteSeed)
	fmt.Fprintf(&b, "#   go test ./filter -run TestDedupStoredBruteForce -args -update-brute\n")
	fmt.Fprintf(&b, "# Lines after the header: the indexes of the %d dropped instructions.\n", n)
	fmt.Fprintf(&b, "texts %s\n", sum)
	for i, d := range dropped {
		if d {
			fmt.Fprintln(&b, i)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readBrute(t *testing.T, path string) (dropped []bool, sum string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dropped = make([]bool, bruteN)
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := sc.Text()
		switch {
		case strings.HasPrefix(s, "#"):
		case strings.HasPrefix(s, "texts "):
			sum = strings.TrimPrefix(s, "texts ")
		default:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= bruteN {
				t.Fatalf("%s:%d: %q is not an index below %d", path, line, s, bruteN)
			}
			dropped[i] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return dropped, sum
}
