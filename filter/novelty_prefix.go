package filter

import (
	"cmp"
	"math"
	"slices"
	"sync"
)

// The prefix engine of an Index made by NewPrefixIndex answers only the
// novelty decision, with the exact maximum when it is above the threshold,
// and looks only at the entries that could score above the threshold.
//
// Elements (token occurrences, as in the exact engine) are ordered by how
// few entries held them when the order was last chosen, rarest first. If a
// candidate Q and an entry E share α elements or more, the first |Q|−α+1
// elements of Q and the first |E|−α+1 of E share one: the smallest shared
// element is in both (AllPairs, PPJoin). A candidate of lc tokens and an
// entry of le tokens score above t only with at least need(lc, le) shared
// elements, and need is far higher for the longer side than for the
// shorter: about t·le for an entry no longer than the candidate, t·lc/(2−t)
// for the candidate. So the pairs are split by which side is longer:
//
//   - an entry no longer than the candidate (le ≤ lc) is found through its
//     short prefix (le − min need over lc ≥ le, + 1 elements), read with
//     the candidate's long one;
//   - a longer entry through its long prefix (le − min need over lc < le,
//     + 1), read with the candidate's short one.
//
// A common word thus sits in the lists of few entries, or is read by few
// candidates. An entry met first at position i of the candidate and j of
// its own order shares at most 1+min(|Q|−i−1, |E|−j−1) elements: below
// need, it is dropped.
//
// Each posting also carries a sketch of the entry from the posting's
// position on, 64 bits: bit b is set when one of the entry's elements at
// that position or later falls in bucket b (the 16 elements held by most
// entries have a bucket each; the others are hashed into the other 48).
// The candidate's side is counted from the position it reads at: for each
// bucket of the sketch, its elements from there on in that bucket. At the
// first meeting, at the smallest shared element, every shared element is
// at or after both positions, so the sum bounds the elements they share
// from above, and the posting alone rules out almost every entry met,
// without a look at the entry itself or at what else the search has met
// of it (at a later meeting the bound may not hold, but an entry that can
// qualify was taken at its first). The survivors' LCS is computed. Every
// step only drops pairs whose score cannot exceed t, so the decisions
// equal brute force, ties at the threshold included.
//
// The order must stay fixed while entries are indexed under it. It is
// chosen again, and every entry indexed again, each time Len doubles, so
// that it follows the data; an element first seen since the last choice
// counts as held by none (rarest).

// prefixPost is an entry in a prefix posting list: the entry's id, its
// length in tokens and the element's position in the entry's order (both
// saturated at 65535), and the sketch of its elements from that position
// on.
type prefixPost struct {
	id      int32
	le, pos uint16
	sk      uint64
}

// prefixSketchDedicated is how many of the most held elements have a
// sketch bucket of their own.
const prefixSketchDedicated = 16

// prefixEngine is the state of the prefix engine.
type prefixEngine struct {
	on bool    // the index uses the prefix engine
	t  float64 // threshold the lists were built for; valid when built
	// built reports that post holds the prefixes of every entry for t.
	built bool

	df []int32 // element id → entries holding it
	// bucket[el] is element el's bucket in the sketches, chosen with the
	// order; an element past its end hashes into the shared buckets.
	bucket []uint8
	key    []uint64 // element id → its place in the order: frozen df << 32 | id
	// short[el] lists the entries whose short prefix holds el; long[el]
	// those whose long prefix, but not their short one, holds it.
	short, long []prefixList
	// dirs holds the directories of the lists with prefixDirMin sorted
	// postings or more.
	dirs []int32
	// sortedN is the number of entries, the first ones, whose postings
	// are in the sorted parts of the lists; deferSort holds the sorting
	// of newer ones off until prefixSortDue is called.
	sortedN   int
	deferSort bool
	merge     [][]prefixPost // per-worker scratch for prefixSort

	// Entry length → least need over the candidate lengths not below it
	// (minShort) and below it (minLong); 0 when not computed yet.
	minShort, minLong []int32
	nextReorder       int

	// mu lets concurrent Checks build the lists for a new threshold.
	mu sync.RWMutex
}

// NewPrefixIndex returns an empty Index whose novelty checks look only at
// the entries that could score above the threshold: Check and Dedup give
// the same decisions as NewIndex's, and the same Max for a candidate that
// is not novel, but for a novel candidate Max is not computed (Novelty.Exact
// is false). A check then costs little more than reading the candidate's
// rarest tokens' lists, however many entries there are; use it for large
// sets. Similar is the same brute force for both.
func NewPrefixIndex() *Index {
	return &Index{pre: prefixEngine{on: true}}
}

// prefixKey returns the order key of element el: elements held by fewer
// entries first.
func (e *prefixEngine) prefixKey(el int32) uint64 {
	if int(el) < len(e.key) {
		return e.key[el]
	}
	return uint64(uint32(el)) // new since the order was chosen: held by none
}

// prefixAdd records entry id, whose elements are x.elems[x.off[id]:], in
// the prefix engine: it sorts them into the order and, when the lists are
// built, indexes the entry under its prefix.
func (x *Index) prefixAdd(id int32) {
	e := &x.pre
	els := x.elems[x.off[id]:x.off[id+1]]
	for _, el := range els {
		for int(el) >= len(e.df) {
			e.df = append(e.df, 0)
		}
		e.df[el]++
	}
	sortByKey(els, e)
	if e.built {
		x.prefixIndex(id)
		if !e.deferSort {
			x.prefixSortDue()
		}
	}
	if e.nextReorder == 0 {
		e.nextReorder = 1024
	}
	if x.Len() >= e.nextReorder {
		x.prefixReorder()
	}
}

// prefixBucket returns element el's sketch bucket.
func (e *prefixEngine) prefixBucket(el int32) uint {
	if int(el) < len(e.bucket) {
		return uint(e.bucket[el])
	}
	return prefixSketchHash(el)
}

// prefixSketchHash is the shared bucket of element el.
func prefixSketchHash(el int32) uint {
	return prefixSketchDedicated + uint(uint32(el)*0x9e3779b1>>26)%(64-prefixSketchDedicated)
}

// sketch returns the sketch of an entry's elements: bit b set when one
// of them is in bucket b.
func (e *prefixEngine) sketch(els []int32) uint64 {
	var sk uint64
	for _, el := range els {
		sk |= 1 << e.prefixBucket(el)
	}
	return sk
}

// sortByKey sorts els into e's order; els are few, so by insertion.
func sortByKey(els []int32, e *prefixEngine) {
	for i := 1; i < len(els); i++ {
		v, k := els[i], e.prefixKey(els[i])
		j := i
		for j > 0 && e.prefixKey(els[j-1]) > k {
			els[j] = els[j-1]
			j--
		}
		els[j] = v
	}
}

// prefixIndex appends entry id to the lists of its prefixes.
func (x *Index) prefixIndex(id int32) {
	e := &x.pre
	els := x.elems[x.off[id]:x.off[id+1]]
	le := x.entryLen(id)
	ms, ml := x.minNeed(le)
	for len(e.short) < len(e.df) {
		e.short = append(e.short, prefixList{dir: -1})
		e.long = append(e.long, prefixList{dir: -1})
	}
	ps := min(max(len(els)-ms+1, 0), len(els)) // len(els) is le
	pl := min(max(len(els)-ml+1, ps), len(els))
	// The posting at position j carries the sketch of els[j:]: the
	// elements a candidate first meeting the entry there can share.
	sk := e.sketch(els[pl:])
	for j := pl - 1; j >= 0; j-- {
		el := els[j]
		sk |= 1 << e.prefixBucket(el)
		p := prefixPost{id: id, le: uint16(min(le, math.MaxUint16)), pos: uint16(min(j, math.MaxUint16)), sk: sk}
		if j < ps {
			e.short[el].posts = append(e.short[el].posts, p)
		} else {
			e.long[el].posts = append(e.long[el].posts, p)
		}
	}
}

// prefixReorder chooses the order again from the entries' elements,
// sorts every entry's elements into it and, when the lists are built,
// indexes every entry again.
func (x *Index) prefixReorder() {
	e := &x.pre
	// Held by fewer entries first; ties by id.
	e.key = slices.Grow(e.key[:0], len(e.df))[:len(e.df)]
	for el, n := range e.df {
		e.key[el] = uint64(n)<<32 | uint64(uint32(el))
	}
	for id := range x.texts {
		els := x.elems[x.off[id]:x.off[id+1]]
		slices.SortFunc(els, func(a, b int32) int { return cmp.Compare(e.key[a], e.key[b]) })
	}
	// Sketch buckets: the most held elements one each, the rest hashed.
	e.bucket = slices.Grow(e.bucket[:0], len(e.df))[:len(e.df)]
	for el := range e.bucket {
		e.bucket[el] = uint8(prefixSketchHash(int32(el)))
	}
	top := make([]int32, 0, len(e.df))
	for el := range e.df {
		top = append(top, int32(el))
	}
	slices.SortFunc(top, func(a, b int32) int { return cmp.Compare(e.key[b], e.key[a]) })
	for b, el := range top[:min(len(top), prefixSketchDedicated)] {
		e.bucket[el] = uint8(b)
	}
	e.nextReorder = 2 * x.Len()
	if e.built {
		x.prefixBuild(e.t)
	}
}

// prefixBuild indexes every entry under its prefix for threshold t.
func (x *Index) prefixBuild(t float64) {
	e := &x.pre
	if !e.built || t != e.t {
		e.t = t
		e.minShort, e.minLong = e.minShort[:0], e.minLong[:0]
	}
	for i := range e.short {
		e.short[i] = prefixList{posts: e.short[i].posts[:0], dir: -1}
		e.long[i] = prefixList{posts: e.long[i].posts[:0], dir: -1}
	}
	e.sortedN = 0
	e.built = true
	for id := range x.texts {
		x.prefixIndex(int32(id))
	}
	x.prefixSort()
}

// prefixReady reports whether the lists serve threshold t: they do when
// built for t or a lower threshold (whose prefixes are longer).
func (e *prefixEngine) prefixReady(t float64) bool {
	return e.built && t >= e.t
}

// prefixCheck is Check for the prefix engine.
func (x *Index) prefixCheck(s *noveltyScratch, q *noveltyQuery, t float64) Novelty {
	e := &x.pre
	e.mu.RLock()
	if !e.prefixReady(t) {
		e.mu.RUnlock()
		e.mu.Lock()
		if !e.prefixReady(t) {
			x.prefixBuild(t)
		}
		e.mu.Unlock()
		e.mu.RLock()
	}
	defer e.mu.RUnlock()
	return x.prefixDecide(s, q, 0, t, 0)
}

// prefixDecide is decide for the prefix engine.
// best is the highest score above t of the entries before minID, or 0.
func (x *Index) prefixDecide(s *noveltyScratch, q *noveltyQuery, best, t float64, minID int) Novelty {
	if x.Len() == 0 {
		return Novelty{Novel: true, Exact: true}
	}
	best = x.prefixSearch(s, q, best, t, minID)
	if best > t {
		return Novelty{Max: best, Exact: true}
	}
	return Novelty{Novel: true}
}

// minNeed returns the least number of shared elements with which an
// entry of le tokens scores above the lists' threshold against a candidate
// not shorter (short) and against a shorter one (long); le+1 when none
// can.
func (x *Index) minNeed(le int) (short, long int) {
	e := &x.pre
	for len(e.minShort) <= le {
		e.minShort = append(e.minShort, 0)
		e.minLong = append(e.minLong, 0)
	}
	if e.minShort[le] > 0 {
		return int(e.minShort[le]), int(e.minLong[le])
	}
	short, long = le+1, le+1
	if le > 0 {
		// No candidate longer than le·2/t can score above t.
		top := 2*le + 2
		if e.t > 0 {
			top = int(2*float64(le)/e.t) + 2
		}
		for lc := 1; lc <= top; lc++ {
			if m := needAbove(e.t, lc, le); m > min(lc, le) {
				continue // no overlap is enough
			} else if lc >= le {
				short = min(short, m)
			} else {
				long = min(long, m)
			}
		}
	}
	e.minShort[le], e.minLong[le] = int32(short), int32(long)
	return short, long
}

// needRow returns, for a candidate of lc tokens, need[le] = needAbove(t,
// lc, le) for every le ≤ maxLen, from the scratch's cache.
func (s *noveltyScratch) needRow(t float64, lc, maxLen int) []int32 {
	if s.needT != t || math.IsNaN(t) {
		s.needT = t
		for i := range s.needRows {
			s.needRows[i] = s.needRows[i][:0]
		}
	}
	for len(s.needRows) <= lc {
		s.needRows = append(s.needRows, nil)
	}
	row := s.needRows[lc]
	for le := len(row); le <= maxLen; le++ {
		row = append(row, int32(needAbove(t, lc, le)))
	}
	s.needRows[lc] = row
	return row[:maxLen+1]
}

// needAbove returns the least LCS with which a candidate of lc tokens and
// an entry of le tokens score above t, in rouge_score's float arithmetic;
// min(lc, le)+1 if none does.
func needAbove(t float64, lc, le int) int {
	top := min(lc, le)
	m := min(max(int(t*float64(lc+le)/2), 1), top+1)
	for m > 1 && scoreFromOverlap(m-1, lc, le).F > t {
		m--
	}
	for m <= top && scoreFromOverlap(m, lc, le).F <= t {
		m++
	}
	return m
}

// prefixSearch returns the highest of best and the scores above t of q
// against the entries with id ≥ minID; best when none is above. The lists
// must be ready for t.
func (x *Index) prefixSearch(s *noveltyScratch, q *noveltyQuery, best, t float64, minID int) float64 {
	n := x.Len()
	lc := len(q.toks)
	x.nQueries.Add(1)
	x.nPairs.Add(int64(n - minID))
	if minID >= n || best >= 1 {
		return best
	}
	if t < 0 {
		// Every entry scores above t, even one sharing nothing: compare
		// with each.
		s.pat.set(q.toks, len(x.occ))
		for id := minID; id < n && best < 1; id++ {
			tok := x.entry(int32(id))
			best = max(best, scoreFromOverlap(s.pat.lcs(tok), lc, len(tok)).F)
		}
		s.pat.reset()
		x.nLCS.Add(int64(n - minID))
		return best
	}
	if lc == 0 {
		return best
	}
	e := &x.pre
	// The candidate's known elements in the order.
	qe := append(s.qsorted[:0], q.elems...)
	s.qsorted = qe[:0]
	sortByKey(qe, e)
	// need by entry length, and for each side the least need of the
	// lengths that can score above t with the candidate's known elements.
	need := s.needRow(t, lc, x.maxLen)
	nq := len(qe)
	mShort, mLong := nq+1, nq+1 // entries not longer than lc; longer
	for le, m := range need {
		if int(m) > min(le, nq) {
			continue
		}
		if le <= lc {
			mShort = min(mShort, int(m))
		} else {
			mLong = min(mLong, int(m))
		}
	}
	if len(s.marks) < n {
		s.marks = make([]uint32, n+n/4)
	}
	s.stampVer++
	if s.stampVer == 0 {
		clear(s.marks)
		s.stampVer = 1
	}
	ps := prefixScan{x: x, need: need, marks: s.marks, ver: s.stampVer, cands: s.pcands[:0], lc: lc, nq: nq, minID: minID}
	// The candidate's sketch, as layers: bit b of layer k is set when
	// more than k of its elements are in bucket b. An entry with sketch sk
	// shares at most Σ_k popcount(layer[k] & sk) elements with it. The
	// probe loop takes the elements it has passed out again.
	var cnt [64]int
	layers := s.layers[:0]
	for _, el := range qe {
		b := e.prefixBucket(el)
		k := cnt[b]
		cnt[b]++
		if k == len(layers) {
			layers = append(layers, 0)
		}
		layers[k] |= 1 << b
	}
	for len(layers) < 3 {
		layers = append(layers, 0)
	}
	s.layers = layers[:0]
	ps.setLayers(layers)
	if mShort > nq && mLong > nq {
		return best // no entry can share enough
	}
	for i, el := range qe[:min(max(nq-min(mShort, mLong)+1, 0), nq)] {
		if i > 0 {
			// The layers of qe[i:]: an entry first met here shares
			// none of the elements before i.
			b := e.prefixBucket(qe[i-1])
			cnt[b]--
			layers[cnt[b]] &^= 1 << b
			ps.setLayers(layers)
		}
		if int(el) >= len(e.short) {
			continue
		}
		short, long := i < nq-mShort+1, i < nq-mLong+1
		ps.scan(&e.short[el], i, short, long)
		if long {
			ps.scan(&e.long[el], i, false, true)
		}
	}
	cands, postings := ps.cands, ps.postings
	s.pcands = cands[:0]
	computed := int64(0)
	set := false
	for _, id := range cands {
		if !set {
			s.pat.set(q.toks, len(x.occ))
			set = true
		}
		tok := x.entry(id)
		computed++
		if f := scoreFromOverlap(s.pat.lcs(tok), lc, len(tok)).F; f > best && f > t {
			best = f
			if best >= 1 {
				break
			}
		}
	}
	if set {
		s.pat.reset()
	}
	x.nLCS.Add(computed)
	x.nPostings.Add(postings)
	return best
}
