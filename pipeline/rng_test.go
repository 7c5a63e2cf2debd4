package pipeline

import (
	"fmt"
	"slices"
	"testing"
)

// sampleFull is the plain partial Fisher–Yates over a whole index array,
// the definition sample must match draw for draw.
func sampleFull(r rng, n, k int) []int {
	k = max(0, min(k, n))
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	for i := 0; i < k; i++ {
		j := i + r.intN(n-i)
		idx[i], idx[j] = idx[j], idx[i]
	}
	return idx[:k]
}

func TestSampleEqualsFullShuffle(t *testing.T) {
	for n := range 40 {
		for k := -1; k <= n+1; k++ {
			for seed := range 20 {
				got := newRNG(int64(seed), "A", "demos", n*100+k).sample(n, k)
				want := sampleFull(newRNG(int64(seed), "A", "demos", n*100+k), n, k)
				if !slices.Equal(got, want) {
					t.Fatalf("sample(%d, %d), seed %d = %v, want %v", n, k, seed, got, want)
				}
			}
		}
	}
	for _, n := range []int{1000, 123457} {
		got := newRNG(7, "B", "demos", 0).sample(n, 8)
		want := sampleFull(newRNG(7, "B", "demos", 0), n, 8)
		if !slices.Equal(got, want) {
			t.Fatalf("sample(%d, 8) = %v, want %v", n, got, want)
		}
	}
}

// BenchmarkSample: drawing the demonstrations costs the same at 100k
// accepted instructions as at 100.
func BenchmarkSample(b *testing.B) {
	for _, n := range []int{100, 100000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			r := newRNG(1, "A", "demos", 0)
			b.ReportAllocs()
			for b.Loop() {
				r.sample(n, 2)
			}
		})
	}
}
