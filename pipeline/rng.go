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
// (none when k ≤ 0). It is the first k steps of a Fisher–Yates shuffle of
// 0..n-1, keeping only the positions the steps have moved, so that it
// costs O(k²) however large n grows (n is the accepted instructions,
// which a long run counts in hundreds of thousands).
func (r rng) sample(n, k int) []int {
	k = max(0, min(k, n))
	out := make([]int, k)
	moved := make([]movedIndex, 0, 2*k)
	at := func(i int) int {
		for _, m := range moved {
			if m.pos == i {
				return m.val
			}
		}
		return i
	}
	set := func(i, v int) {
		for x := range moved {
			if moved[x].pos == i {
				moved[x].val = v
				return
			}
		}
		moved = append(moved, movedIndex{i, v})
	}
	for i := range k {
		j := i + r.intN(n-i)
		vi, vj := at(i), at(j)
		set(j, vi)
		set(i, vj)
		out[i] = vj
	}
	return out
}

// movedIndex is a position of sample's virtual shuffle and its value.
type movedIndex struct{ pos, val int }

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
