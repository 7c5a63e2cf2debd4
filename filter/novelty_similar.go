package filter

import "math/bits"

// Neighbor is an entry with its Rouge-L F-measure against a query text.
type Neighbor struct {
	ID    int
	Text  string
	Score float64
}

// Similar compares text with every entry, as the reference does for each
// accepted instruction, and returns the k entries with the highest Rouge-L
// F-measure, best first, and the mean score over all entries (0 when the
// index is empty). The mean is summed in numpy's order (blocks of 8192,
// each summed pairwise) so that it equals the reference's np.mean to the
// bit. Ties are ordered as the
// reference's np.argsort(scores)[-k:][::-1] orders them (numpy's
// introsort), so that a map built from the result, later entries
// overwriting earlier ones with the same text, equals the reference's
// most_similar, key order included.
//
// Similar costs one LCS per entry; the novelty decision does not need it.
func (x *Index) Similar(text string, k int) (top []Neighbor, mean float64) {
	n := x.Len()
	if n == 0 {
		return nil, 0
	}
	s := x.getScratch()
	defer x.scratch.Put(s)
	q := &s.q
	x.encode(s, q, Tokenize(text))
	lc := len(q.toks)
	scores := make([]float64, n)
	s.pat.set(q.toks, len(x.occ))
	for id := range scores {
		e := x.entry(int32(id))
		scores[id] = scoreFromOverlap(s.pat.lcs(e), lc, len(e)).F
	}
	s.pat.reset()
	x.nQueries.Add(1)
	x.nPairs.Add(int64(n))
	x.nLCS.Add(int64(n))

	mean = noveltyNumpySum(scores) / float64(n)
	k = min(max(k, 0), n)
	order := noveltyArgsortTop(scores, k)
	top = make([]Neighbor, 0, k)
	for j := n - 1; j >= n-k; j-- {
		id := order[j]
		top = append(top, Neighbor{ID: id, Text: x.texts[id], Score: scores[id]})
	}
	return top, mean
}

// noveltyNumpySum sums a as np.sum and np.mean do for a contiguous
// float64 array: the reduction runs over blocks of 8192 elements (numpy's
// buffer size), adding each block's pairwise sum to the total in turn.
func noveltyNumpySum(a []float64) float64 {
	const block = 8192
	total := 0.0
	for len(a) > block {
		total += noveltyPairwiseSum(a[:block])
		a = a[block:]
	}
	return total + noveltyPairwiseSum(a)
}

// noveltyPairwiseSum is numpy's pairwise_sum for float64: below 8
// elements a plain loop; up to 128, eight interleaved accumulators
// combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)) and then the tail;
// above that, the two halves (the first rounded down to a multiple of 8)
// recursively.
func noveltyPairwiseSum(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		res := 0.0
		for _, v := range a {
			res += v
		}
		return res
	case n <= 128:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += a[i+j]
			}
		}
		res := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			res += a[i]
		}
		return res
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return noveltyPairwiseSum(a[:n2]) + noveltyPairwiseSum(a[n2:])
	}
}

// noveltyArgsort returns the permutation that sorts a ascending, as
// numpy's default np.argsort (introsort: median-of-3 quicksort, insertion
// sort for 16 elements or fewer, heapsort past a depth limit) produces it, ties
// included. NaNs are not expected.
func noveltyArgsort(a []float64) []int {
	return noveltyArgsortTop(a, len(a))
}

// noveltyArgsortTop is noveltyArgsort for the last k positions only: the
// others hold the remaining indexes in no useful order. It skips the
// parts of numpy's sort that lie wholly before them, which cannot change
// them: every step of the sort works within its own range.
func noveltyArgsortTop(a []float64, k int) []int {
	idx := make([]int, len(a))
	for i := range idx {
		idx[i] = i
	}
	noveltyAquicksort(a, idx, len(a)-k)
	return idx
}

// noveltyAquicksort is numpy's aquicksort on tosort, skipping the ranges
// that end before position from.
func noveltyAquicksort(v []float64, tosort []int, from int) {
	const smallQuicksort = 15
	num := len(tosort)
	if num <= 1 {
		return
	}
	type span struct{ l, r, depth int }
	var stack []span
	pl, pr := 0, num-1
	cdepth := 2 * (bits.Len(uint(num)) - 1)
	for {
		switch {
		case pr < from:
			// Nothing here reaches the positions wanted.
		case cdepth < 0:
			noveltyAheapsort(v, tosort[pl:pr+1])
		default:
			for pr-pl > smallQuicksort {
				pm := pl + (pr-pl)>>1
				if v[tosort[pm]] < v[tosort[pl]] {
					tosort[pm], tosort[pl] = tosort[pl], tosort[pm]
				}
				if v[tosort[pr]] < v[tosort[pm]] {
					tosort[pr], tosort[pm] = tosort[pm], tosort[pr]
				}
				if v[tosort[pm]] < v[tosort[pl]] {
					tosort[pm], tosort[pl] = tosort[pl], tosort[pm]
				}
				vp := v[tosort[pm]]
				pi, pj := pl, pr-1
				tosort[pm], tosort[pj] = tosort[pj], tosort[pm]
				for {
					pi++
					for v[tosort[pi]] < vp {
						pi++
					}
					pj--
					for vp < v[tosort[pj]] {
						pj--
					}
					if pi >= pj {
						break
					}
					tosort[pi], tosort[pj] = tosort[pj], tosort[pi]
				}
				pk := pr - 1
				tosort[pi], tosort[pk] = tosort[pk], tosort[pi]
				cdepth--
				// Defer the larger partition.
				if pi-pl < pr-pi {
					stack = append(stack, span{pi + 1, pr, cdepth})
					pr = pi - 1
				} else {
					if pi-1 >= from {
						stack = append(stack, span{pl, pi - 1, cdepth})
					}
					pl = pi + 1
				}
				if pr < from {
					break
				}
			}
			// Insertion sort.
			for pi := pl + 1; pi <= pr && pr >= from; pi++ {
				vi := tosort[pi]
				vp := v[vi]
				pj := pi
				for pj > pl && vp < v[tosort[pj-1]] {
					tosort[pj] = tosort[pj-1]
					pj--
				}
				tosort[pj] = vi
			}
		}
		if len(stack) == 0 {
			return
		}
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		pl, pr, cdepth = top.l, top.r, top.depth
	}
}

// noveltyAheapsort is numpy's aheapsort, used by noveltyAquicksort on a
// partition that recursed too deep and by np.argsort(kind="heapsort").
func noveltyAheapsort(v []float64, tosort []int) {
	a := tosort
	n := len(a)
	for l := n >> 1; l > 0; l-- {
		noveltySiftDown(v, a, l, n)
	}
	for n > 1 {
		a[0], a[n-1] = a[n-1], a[0]
		n--
		noveltySiftDown(v, a, 1, n)
	}
}

// noveltySiftDown moves the element at heap position i down the max-heap
// a[:n] (ordered by v) as numpy does. numpy indexes the heap from 1:
// position k is a[k-1].
func noveltySiftDown(v []float64, a []int, i, n int) {
	tmp := a[i-1]
	for j := i << 1; j <= n; j += j {
		if j < n && v[a[j-1]] < v[a[j]] {
			j++
		}
		if !(v[tmp] < v[a[j-1]]) {
			break
		}
		a[i-1] = a[j-1]
		i = j
	}
	a[i-1] = tmp
}
