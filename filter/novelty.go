package filter

import (
	"cmp"
	"math/bits"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Index is the novelty pool of one instruction type: the texts accepted so
// far (seeds first, then machine instructions), each tokenized once with
// Tokenize. It answers the Ensemble-Instruct novelty question — is the
// highest Rouge-L F-measure (no stemming) of a candidate against every
// entry above a threshold? — exactly, with the float bits of rouge_score,
// while computing the LCS of few entries.
//
// How: tokens are interned as integer ids, and each text is seen as the
// multiset of its tokens — "the" once, "the" a second time, …: its
// elements. The number of elements a candidate shares with an entry bounds
// their LCS from above, hence their F-measure. The index keeps, for every
// element, the list of the entries holding it and, for the 128 most
// frequent elements (function words, mostly; chosen again each time Len
// doubles), one bitmap per entry length with a bit per entry. A query
// counts the entries' shared rare elements from their posting lists into
// bit-sliced counters and adds the shared common elements from the
// bitmaps, 64 entries at a time, so that the long posting lists of "the"
// or "a" are never read. It computes the LCS, with a bit-parallel
// algorithm, only for the entries whose count could beat the best score
// found so far, highest counts first. The maximum it finds is exact even
// for a rejected candidate (near duplicates prune the rest hardest).
//
// NewPrefixIndex makes an index with another engine, for large sets: the
// same decisions, from the few entries that could score above the
// threshold, without the maximum of a novel candidate (see
// novelty_prefix.go).
//
// The zero value is an empty index ready to use; NewIndex is equivalent.
// Len, Text, Check, Similar and Stats may be called concurrently with each
// other; Add and Dedup modify the index and must not run concurrently with
// any other method. An Index must not be copied after first use.
type Index struct {
	texts  []string
	off    []int32      // entry i has the tokens toks[off[i]:off[i+1]]
	sigs   []noveltySig // entry id → its common elements
	toks   []int32      // token ids of all entries, concatenated
	elems  []int32      // element ids, parallel to toks (the prefix engine keeps each entry's in its order)
	nElems int          // element ids in use
	vocab  map[string]int32
	occ    [][]int32       // token id → element id of its 1st, 2nd, … occurrence
	post   [][]noveltyPost // element id → the entries holding it, ascending id
	count  []int32         // scratch for Add, by token id, all zero between calls

	// The common elements, at most noveltySigBits of them, each with a bit
	// in the entry signatures; chosen again each time Len doubles.
	bit []int16 // element id → signature bit, -1 if not common
	// byLen[le] lists the entries of le tokens, with bitmaps of their
	// common elements.
	byLen       []*noveltyClass // nil for lengths no entry has
	nextRebuild int
	maxLen      int // tokens of the longest entry

	scratch sync.Pool // *noveltyScratch

	pre prefixEngine // used instead of post, bit, byLen and sigs when pre.on

	nQueries, nPairs, nLCS, nPostings, nCounted atomic.Int64
}

// noveltyPost is an entry in a posting list: its id, its length and its
// position among the entries of that length.
type noveltyPost struct {
	id, le, pos int32
}

// noveltySigBits is the number of common elements tracked by signature.
const noveltySigBits = 128

// noveltySig is a set of common elements, one bit each.
type noveltySig [noveltySigBits / 64]uint64

func (a noveltySig) and(b noveltySig) int {
	n := 0
	for i := range a {
		n += bits.OnesCount64(a[i] & b[i])
	}
	return n
}

// noveltyClass is the entries of one length, in increasing id order, with
// their common elements as bitmaps: bit j of cols[b][r] is set when entry
// ids[64r+j] holds common element b.
type noveltyClass struct {
	ids  []int32
	cols [noveltySigBits][]uint64
}

// NewIndex returns an empty Index.
func NewIndex() *Index { return &Index{} }

// Len returns the number of entries.
func (x *Index) Len() int { return len(x.texts) }

// Text returns the text of entry id (0 ≤ id < Len), as it was added.
func (x *Index) Text(id int) string { return x.texts[id] }

// Add tokenizes text, adds it as the next entry and returns its id: 0 for
// the first entry, then 1, 2, …. Every text is added, even an empty one or
// a duplicate; the novelty decision is the caller's (see Check and Dedup).
func (x *Index) Add(text string) int {
	return x.addTokens(text, Tokenize(text))
}

// AddAll adds every text of texts, in order, as Add would one by one,
// tokenizing them on every core (GOMAXPROCS goroutines) first: loading a
// large exclusion set is then bound by the adds alone.
func (x *Index) AddAll(texts []string) {
	const chunk = 4096
	workers := max(1, runtime.GOMAXPROCS(0))
	tokens := make([][]string, min(len(texts), chunk*workers))
	for lo := 0; lo < len(texts); lo += len(tokens) {
		hi := min(lo+len(tokens), len(texts))
		parallelFor(hi-lo, chunk, workers, func(_, i int) {
			tokens[i] = Tokenize(texts[lo+i])
		})
		for i, text := range texts[lo:hi] {
			x.addTokens(text, tokens[i])
			tokens[i] = nil
		}
	}
}

// addTokens adds text, whose tokens are given.
func (x *Index) addTokens(text string, tokens []string) int {
	if x.vocab == nil {
		x.vocab = make(map[string]int32)
		x.off = append(x.off, 0)
		x.nextRebuild = 64
	}
	id := int32(len(x.texts))
	le := len(tokens)
	var post noveltyPost
	if !x.pre.on {
		for len(x.byLen) <= le {
			x.byLen = append(x.byLen, nil)
		}
		if x.byLen[le] == nil {
			x.byLen[le] = new(noveltyClass)
		}
		post = noveltyPost{id: id, le: int32(le), pos: int32(len(x.byLen[le].ids))}
	}
	start := len(x.toks)
	for _, s := range tokens {
		t, ok := x.vocab[s]
		if !ok {
			t = int32(len(x.occ))
			// Tokens are substrings of a lowered copy of the whole text:
			// keep only the token alive.
			x.vocab[strings.Clone(s)] = t
			x.occ = append(x.occ, nil)
		}
		x.toks = append(x.toks, t)
	}
	if len(x.count) < len(x.occ) {
		x.count = make([]int32, len(x.occ)+len(x.occ)/4)
	}
	old := !x.pre.on
	var sig noveltySig
	for _, t := range x.toks[start:] {
		k := x.count[t]
		x.count[t]++
		if int(k) == len(x.occ[t]) {
			x.occ[t] = append(x.occ[t], int32(x.nElems))
			x.nElems++
			if old {
				x.post = append(x.post, nil)
				x.bit = append(x.bit, -1)
			}
		}
		el := x.occ[t][k]
		x.elems = append(x.elems, el)
		if old {
			x.post[el] = append(x.post[el], post)
			if b := x.bit[el]; b >= 0 {
				sig[b/64] |= 1 << uint(b%64)
			}
		}
	}
	for _, t := range x.toks[start:] {
		x.count[t] = 0
	}
	x.texts = append(x.texts, text)
	x.off = append(x.off, int32(len(x.toks)))
	x.maxLen = max(x.maxLen, le)
	if !old {
		x.prefixAdd(id)
		return int(id)
	}
	x.sigs = append(x.sigs, sig)
	cl := x.byLen[le]
	if len(cl.ids)%64 == 0 {
		for b := range cl.cols {
			cl.cols[b] = append(cl.cols[b], 0)
		}
	}
	cl.ids = append(cl.ids, id)
	cl.setBits(len(cl.ids)-1, sig)
	if len(x.texts) == x.nextRebuild {
		x.chooseCommon()
		x.nextRebuild *= 2
	}
	return int(id)
}

// chooseCommon makes the noveltySigBits elements with the longest posting
// lists the common ones and recomputes every signature.
func (x *Index) chooseCommon() {
	els := make([]int32, x.nElems)
	for i := range els {
		els[i] = int32(i)
	}
	slices.SortFunc(els, func(a, b int32) int {
		if c := cmp.Compare(len(x.post[b]), len(x.post[a])); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for i := range x.bit {
		x.bit[i] = -1
	}
	for i, el := range els[:min(len(els), noveltySigBits)] {
		x.bit[el] = int16(i)
	}
	for id := range x.sigs {
		var sig noveltySig
		for _, el := range x.elems[x.off[id]:x.off[id+1]] {
			if b := x.bit[el]; b >= 0 {
				sig[b/64] |= 1 << uint(b%64)
			}
		}
		x.sigs[id] = sig
	}
	for _, cl := range x.byLen {
		if cl == nil {
			continue
		}
		for b := range cl.cols {
			clear(cl.cols[b])
		}
		for j, id := range cl.ids {
			cl.setBits(j, x.sigs[id])
		}
	}
}

// setBits records the common elements sig of the entry at position j.
func (cl *noveltyClass) setBits(j int, sig noveltySig) {
	for w, word := range sig {
		for word != 0 {
			b := w*64 + bits.TrailingZeros64(word)
			word &= word - 1
			cl.cols[b][j/64] |= 1 << uint(j%64)
		}
	}
}

// entry returns the token ids of entry id.
func (x *Index) entry(id int32) []int32 {
	return x.toks[x.off[id]:x.off[id+1]]
}

// entryLen returns the number of tokens of entry id.
func (x *Index) entryLen(id int32) int {
	return int(x.off[id+1] - x.off[id])
}

// Novelty is the outcome of a novelty check of one candidate.
type Novelty struct {
	// Novel reports that no entry scores above the threshold; such a
	// candidate is kept.
	Novel bool
	// Max is the highest Rouge-L F of the candidate against the entries,
	// exact to the bit when Exact is set. With no entries to compare, Max
	// is 0 and Novel is true.
	Max float64
	// Exact reports that Max was computed. It always is by an index from
	// NewIndex; one from NewPrefixIndex computes it only for a candidate
	// that is not novel, and leaves Max 0 otherwise.
	Exact bool
}

// Check reports whether text is novel against the entries: whether its
// highest Rouge-L F-measure against every entry is at most threshold
// (a score exactly equal to the threshold is novel, as in the reference,
// whose threshold is 0.7). Check does not add text; see Dedup for the
// usual check-then-add loop.
func (x *Index) Check(text string, threshold float64) Novelty {
	s := x.getScratch()
	defer x.scratch.Put(s)
	x.encode(s, &s.q, Tokenize(text))
	if x.pre.on {
		return x.prefixCheck(s, &s.q, threshold)
	}
	return x.decide(s, &s.q, 0, threshold, 0)
}

// Dedup checks each text in order against the entries and the texts of
// this call accepted before it, adds the novel ones to the index and
// returns one Novelty per text. The results equal those of calling Check
// then, when novel, Add for each text in turn, so calling Dedup on
// consecutive parts of a stream gives what one call on the whole stream
// gives; they do not depend on GOMAXPROCS.
//
// Dedup checks a batch of texts in parallel (GOMAXPROCS goroutines)
// against the index as it was at the start of the batch, then checks each
// text of the batch, in order, against only the batch's texts accepted
// before it.
func (x *Index) Dedup(texts []string, threshold float64) []Novelty {
	out := make([]Novelty, len(texts))
	workers := max(1, runtime.GOMAXPROCS(0))
	scratch := make([]*noveltyScratch, workers)
	for i := range scratch {
		scratch[i] = x.getScratch()
	}
	defer func() {
		for _, s := range scratch {
			x.scratch.Put(s)
		}
	}()
	if x.pre.on {
		if !x.pre.prefixReady(threshold) {
			x.prefixBuild(threshold)
		}
		// The lists are sorted between batches, not while phase 2 adds
		// entries: a sort there would move this batch's entries out of
		// the id order that lets phase 2 read only them.
		x.pre.deferSort = true
		defer func() {
			x.pre.deferSort = false
			x.prefixSortDue()
		}()
	}
	batch := min(noveltyBatch, len(texts))
	tokens := make([][]string, batch)
	queries := make([]noveltyQuery, batch)
	for lo := 0; lo < len(texts); lo += batch {
		hi := min(lo+batch, len(texts))
		if x.pre.on {
			x.prefixSortDue()
		}
		start := x.Len()
		// Phase 1, in parallel: each text against the index as of now.
		// The index is only read.
		parallelFor(hi-lo, 8, len(scratch), func(w, k int) {
			s, i := scratch[w], lo+k
			tokens[k] = Tokenize(texts[i])
			q := &queries[k]
			x.encode(s, q, tokens[k])
			if x.pre.on {
				out[i] = x.prefixDecide(s, q, 0, threshold, 0)
			} else {
				out[i] = x.decide(s, q, 0, threshold, 0)
			}
		})
		// Phase 2, in order: each text against the texts of this batch
		// accepted before it, which phase 1 did not see.
		s := scratch[0]
		for i := lo; i < hi; i++ {
			if x.Len() > start {
				q := &queries[i-lo]
				if q.partial {
					// Some tokens may have been added since.
					x.encode(s, q, tokens[i-lo])
				}
				if x.pre.on {
					out[i] = x.prefixDecide(s, q, out[i].Max, threshold, start)
				} else {
					out[i] = x.decide(s, q, out[i].Max, threshold, start)
				}
			}
			if out[i].Novel {
				x.addTokens(texts[i], tokens[i-lo])
			}
		}
		clear(tokens)
	}
	return out
}

// parallelFor calls f(w, i) for every i in [0, n), on workers goroutines
// that take the indexes in chunks of chunk from a shared counter; w is the
// goroutine's number, for its own scratch. It returns when every call has.
func parallelFor(n, chunk, workers int, f func(w, i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range min(workers, (n+chunk-1)/chunk) {
		wg.Go(func() {
			for {
				i0 := int(next.Add(int64(chunk))) - chunk
				if i0 >= n {
					return
				}
				for i := i0; i < min(i0+chunk, n); i++ {
					f(w, i)
				}
			}
		})
	}
	wg.Wait()
}

// noveltyBatch is the number of texts that Dedup checks in parallel
// before accepting any of them. Larger batches leave the workers less
// idle at the end of each; smaller ones leave less for the sequential
// phase.
const noveltyBatch = 256

// NoveltyStats counts the work of an Index since it was created.
type NoveltyStats struct {
	Queries int64 // novelty checks (Dedup makes one or two per text) and Similar calls
	Pairs   int64 // (query, entry) pairs the queries had to account for
	LCS     int64 // pairs whose LCS was computed; the others were pruned

	Postings int64 // posting list items read
	Counted  int64 // entries whose shared count was computed from bitmaps
}

// Stats returns the counters of x.
func (x *Index) Stats() NoveltyStats {
	return NoveltyStats{
		Queries:  x.nQueries.Load(),
		Pairs:    x.nPairs.Load(),
		LCS:      x.nLCS.Load(),
		Postings: x.nPostings.Load(),
		Counted:  x.nCounted.Load(),
	}
}
