package pipeline

import (
	"hash/fnv"
	"math/rand/v2"
	"strconv"

	"github.com/ensinstruct/ensinstruct/llm"
)

// Every random choice of a run comes from a generator keyed by the run seed
// and the choice's place: (type, purpose, index). Re-running the same
// configuration therefore makes the same choices in the same places,
// whatever order the model calls complete in.
//
// The generator is PCG, whose output is fixed by its algorithm; the
// sampling helpers below are written here rather than taken from
// math/rand/v2, whose derived methods carry no promise of stability.
type rng struct{ src *rand.PCG }

func newRNG(seed int64, typ, purpose string, index int) rng {
	h := fnv.New64a()
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(index), 10))
	return rng{rand.NewPCG(uint64(seed), h.Sum64())}
}

// intN returns a number in [0, n). The modulo bias is below 2^-40 for the
// sizes used here.
func (r rng) intN(n int) int { return int(r.src.Uint64() % uint64(n)) }

// float64 returns a number in [0, 1).
func (r rng) float64() float64 { return float64(r.src.Uint64()>>11) / (1 << 53) }

// shuffle permutes n elements with swap (Fisher–Yates).
func (r rng) shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, r.intN(i+1))
	}
}

// sample returns min(k, n) distinct indices of [0, n), in random order
// (none when k ≤ 0).
func (r rng) sample(n, k int) []int {
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

// seedValue derives the sampling seed sent with a request, so that
// backends that honour seeds reproduce a reply even without the cache.
func (r rng) seedValue() int64 { return int64(r.src.Uint64() >> 33) }

// pickWeighted chooses a model by weight (a zero weight counts as 1).
func (r rng) pickWeighted(models []llm.ModelInfo) llm.ModelInfo {
	if len(models) == 1 {
		return models[0]
	}
	total := 0.0
	for _, m := range models {
		total += weightOf(m)
	}
	x := r.float64() * total
	for _, m := range models {
		x -= weightOf(m)
		if x < 0 {
			return m
		}
	}
	return models[len(models)-1]
}

func weightOf(m llm.ModelInfo) float64 {
	if m.Weight == 0 {
		return 1
	}
	return m.Weight
}
