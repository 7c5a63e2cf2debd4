package filter

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// noveltyDPLCS is the textbook dynamic program: the length of the longest
// common subsequence of a and b, where a negative token in a matches
// nothing.
func noveltyDPLCS(a, b []int32) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for i := range a {
		for j := range b {
			switch {
			case a[i] >= 0 && a[i] == b[j]:
				cur[j+1] = prev[j] + 1
			case prev[j+1] >= cur[j]:
				cur[j+1] = prev[j+1]
			default:
				cur[j+1] = cur[j]
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func TestNoveltyDPLCS(t *testing.T) {
	for _, tc := range []struct {
		a, b []int32
		want int
	}{
		{nil, nil, 0},
		{[]int32{1}, nil, 0},
		{[]int32{1, 2, 3}, []int32{1, 2, 3}, 3},
		{[]int32{1, 2, 3}, []int32{3, 2, 1}, 1},
		{[]int32{1, 2, 3, 4}, []int32{2, 4, 1, 3}, 2},
		{[]int32{-1, 2}, []int32{2, 2}, 1},
	} {
		if got := noveltyDPLCS(tc.a, tc.b); got != tc.want {
			t.Errorf("noveltyDPLCS(%v, %v) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestBitLCSMatchesDP compares the bit-parallel LCS with the dynamic
// program on random sequences across the one-word and multiword cases,
// reusing one pattern the way queries do.
func TestBitLCSMatchesDP(t *testing.T) {
	lengths := []int{0, 1, 2, 7, 31, 63, 64, 65, 100, 127, 128, 129, 191, 192, 193, 300}
	var p bitLCSPattern
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 7))
		alphabet := 1 + r.IntN(12)
		seq := func(n int, unknown bool) []int32 {
			s := make([]int32, n)
			for i := range s {
				s[i] = int32(r.IntN(alphabet))
				if unknown && r.IntN(10) == 0 {
					s[i] = -1
				}
			}
			return s
		}
		for _, n := range lengths {
			pattern := seq(n, true)
			p.set(pattern, alphabet)
			for range 4 {
				text := seq(lengths[r.IntN(len(lengths))], false)
				want := noveltyDPLCS(pattern, text)
				if got := p.lcs(text); got != want {
					t.Fatalf("seed %d, alphabet %d: lcs(%v, %v) = %d, want %d", seed, alphabet, pattern, text, got, want)
				}
			}
			p.reset()
		}
	}
}

// TestBitLCSReset checks that reset leaves no mask behind, so that a
// pattern set after another with other tokens is not polluted.
func TestBitLCSReset(t *testing.T) {
	var p bitLCSPattern
	for _, n := range []int{5, 70, 5, 200, 3} {
		a := make([]int32, n)
		for i := range a {
			a[i] = int32(i % 9)
		}
		p.set(a, 20)
		p.reset()
	}
	p.set([]int32{15, 16}, 20)
	defer p.reset()
	text := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8}
	if got := p.lcs(text); got != 0 {
		t.Fatalf("lcs after resets = %d, want 0", got)
	}
	for t2 := range int32(20) {
		if t2 != 15 && t2 != 16 && p.mask[t2] != 0 {
			t.Errorf("mask[%d] = %b left set", t2, p.mask[t2])
		}
	}
}

// FuzzLCS checks the bit-parallel LCS against the dynamic program: the
// first byte splits the rest into pattern and text, the second picks the
// alphabet size; byte 255 in the pattern is a token no text has.
func FuzzLCS(f *testing.F) {
	f.Add([]byte{3, 4, 1, 2, 3, 3, 2, 1})
	f.Add([]byte{0, 2})
	f.Add(append([]byte{70, 3}, make([]byte, 150)...))
	f.Add(append([]byte{200, 255}, []byte("the quick brown fox jumps over the lazy dog, again and again and again, until the dog wakes up and the fox runs away over the hills and far away from the farm yard")...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		split, alphabet := int(data[0]), 1+int(data[1])%32
		data = data[2:]
		split = min(split, len(data))
		toTokens := func(bs []byte, unknown bool) []int32 {
			s := make([]int32, len(bs))
			for i, c := range bs {
				s[i] = int32(int(c) % alphabet)
				if unknown && c == 255 {
					s[i] = -1
				}
			}
			return s
		}
		pattern, text := toTokens(data[:split], true), toTokens(data[split:], false)
		var p bitLCSPattern
		p.set(pattern, alphabet)
		if got, want := p.lcs(text), noveltyDPLCS(pattern, text); got != want {
			t.Fatalf("lcs(%v, %v) = %d, want %d", pattern, text, got, want)
		}
	})
}

func BenchmarkBitLCS(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{16, 100} {
		pattern := make([]int32, n)
		text := make([]int32, n)
		for i := range n {
			pattern[i], text[i] = int32(r.IntN(20)), int32(r.IntN(20))
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var p bitLCSPattern
			p.set(pattern, 20)
			for b.Loop() {
				p.lcs(text)
			}
		})
	}
}
