package filter

import (
	"cmp"
	"math/bits"
	"slices"
)

// noveltyQuery is a candidate encoded against an index's vocabulary.
type noveltyQuery struct {
	toks  []int32 // token ids in text order; -1 for a token no entry has
	elems []int32 // the known elements (token occurrences)
	// partial reports that some token occurrence was unknown: encoding
	// again after more entries are added may find it.
	partial bool
}

// noveltyScratch is the working memory of one query at a time, reused.
type noveltyScratch struct {
	q     noveltyQuery
	pat   bitLCSPattern
	count []int32 // token id → occurrences, all zero between uses

	// searchAll: rare[le] is bit-sliced counters of the rare elements
	// shared by the entries of length le (empty when none), for the
	// classes listed in classes.
	rare    [][]uint64
	classes []int32
	common  []int32
	rareEls []int32
	cols    [][]uint64

	// searchTail: counts of shared elements by entry id, zero between
	// uses, and a bitmap of the nonzero ones.
	shared  []uint16
	touched []uint64
	ids     []int32
	cands   []noveltyCand
	order   []noveltyCand
	buckets []int32

	// prefixSearch: a mark per entry id, whose ver equals stampVer for
	// the entries already met by the current search.
	marks    []uint32
	stampVer uint32
	qsorted  []int32  // the candidate's known elements in the prefix order
	pcands   []int32  // the entries a prefix search could not rule out
	layers   []uint64 // the candidate's sketch layers
	needT    float64
	needRows [][]int32 // candidate length → need by entry length, for needT

	need    []int32 // entry length → minimal shared count to beat best
	needVer []uint32
	ver     uint32
}

func (x *Index) getScratch() *noveltyScratch {
	if s, ok := x.scratch.Get().(*noveltyScratch); ok {
		return s
	}
	return new(noveltyScratch)
}

// encode sets q to tokens encoded against x's vocabulary. It only reads x.
func (x *Index) encode(s *noveltyScratch, q *noveltyQuery, tokens []string) {
	q.toks = q.toks[:0]
	q.elems = q.elems[:0]
	q.partial = false
	if len(s.count) < len(x.occ) {
		s.count = make([]int32, len(x.occ)+len(x.occ)/4)
	}
	for _, tok := range tokens {
		t, ok := x.vocab[tok]
		if !ok {
			q.toks = append(q.toks, -1)
			q.partial = true
			continue
		}
		q.toks = append(q.toks, t)
		k := s.count[t]
		s.count[t]++
		if int(k) < len(x.occ[t]) {
			q.elems = append(q.elems, x.occ[t][k])
		} else {
			q.partial = true
		}
	}
	for _, t := range q.toks {
		if t >= 0 {
			s.count[t] = 0
		}
	}
}

// decide checks q against the entries with id ≥ minID, knowing that some
// earlier entries already score best (0 if none).
func (x *Index) decide(s *noveltyScratch, q *noveltyQuery, best, threshold float64, minID int) Novelty {
	if minID >= x.Len() {
		return Novelty{Novel: best <= threshold || minID == 0, Max: best, Exact: true}
	}
	// Every entry scores at least 0, and none above 1.
	best = x.search(s, q, max(best, 0), minID)
	return Novelty{Novel: best <= threshold, Max: best, Exact: true}
}

// noveltyMaxShared is the most elements a candidate may have for the
// bit-sliced counters of searchAll (eight planes); a longer candidate,
// rare among instructions, is compared with every entry.
const noveltyMaxShared = 255

// noveltySearch is the state of one search.
type noveltySearch struct {
	x        *Index
	s        *noveltyScratch
	lc       int
	best     float64
	computed int64
	postings int64
	counted  int64
	sink     int32 // keeps the early loads of tryBestFirst
}

// search returns the highest of best and the Rouge-L F of q against the
// entries with id ≥ minID.
//
// An entry of le tokens sharing ov elements with the candidate of lc
// tokens has LCS ≤ ov, so F ≤ F(ov, lc, le), computed with rouge_score's
// float arithmetic (F grows with the LCS in floats too: one more common
// token changes F by far more than rounding). need(le) is the least ov
// for which that bound beats best. An entry's LCS is computed only if its
// exact ov reaches need(le); the entries of a length where no ov can
// reach it are not looked at.
func (x *Index) search(s *noveltyScratch, q *noveltyQuery, best float64, minID int) float64 {
	n := x.Len()
	lc := len(q.toks)
	x.nQueries.Add(1)
	x.nPairs.Add(int64(n - minID))
	if lc == 0 || best >= 1 || minID >= n {
		return best
	}
	s.pat.set(q.toks, len(x.occ))
	ss := noveltySearch{x: x, s: s, lc: lc, best: best}
	if len(s.need) <= x.maxLen {
		s.need = make([]int32, x.maxLen+1+x.maxLen/4)
		s.needVer = make([]uint32, len(s.need))
	}
	ss.newBest()
	switch {
	case len(q.elems) > noveltyMaxShared:
		// Too many for the counters: compare with every entry.
		for id := minID; id < n && !ss.try(int32(id)); id++ {
		}
	case minID > 0:
		ss.searchTail(q, minID)
	default:
		ss.searchAll(q)
	}
	return ss.finish()
}

// searchTail searches the entries with id ≥ minID, the newest: it counts
// the elements each shares with the candidate from the ends of the
// posting lists, and tries those whose count could beat best.
func (ss *noveltySearch) searchTail(q *noveltyQuery, minID int) {
	x, s := ss.x, ss.s
	n := x.Len()
	if len(s.shared) < n {
		s.shared = make([]uint16, n+n/4)
		s.touched = make([]uint64, (len(s.shared)+63)/64)
	}
	shared, touched := s.shared, s.touched
	for _, el := range q.elems {
		p := x.post[el]
		for j := len(p) - 1; j >= 0 && int(p[j].id) >= minID; j-- {
			id := p[j].id
			touched[id/64] |= 1 << uint(id%64)
			shared[id]++
		}
	}
	ids := s.ids[:0]
	w0, w1 := minID/64, (n+63)/64
	for w, word := range touched[w0:w1] {
		for word != 0 {
			ids = append(ids, int32((w0+w)*64+bits.TrailingZeros64(word)))
			word &= word - 1
		}
	}
	clear(touched[w0:w1])
	s.ids = ids[:0]
	ss.postings += int64(len(ids))
	ss.evaluate(ids)
}

// searchAll searches every entry. The candidate's rare elements are
// counted from their posting lists into s.rare, bit-sliced counters per
// entry length; its common elements are added from the length classes'
// bitmaps by scanClass. The classes are read nearest the candidate's
// length first, each best first, so that best rises early.
func (ss *noveltySearch) searchAll(q *noveltyQuery) {
	x, s := ss.x, ss.s
	common, rareEls := s.common[:0], s.rareEls[:0]
	for _, el := range q.elems {
		if x.bit[el] >= 0 {
			common = append(common, el)
		} else {
			rareEls = append(rareEls, el)
		}
	}
	s.common, s.rareEls = common[:0], rareEls[:0]
	rare := len(rareEls)
	u := len(common)
	// Rare counts: s.rare[le] holds np planes per row of class le.
	np := bits.Len(uint(rare))
	if len(s.rare) < len(x.byLen) {
		s.rare = append(s.rare, make([][]uint64, len(x.byLen)-len(s.rare))...)
	}
	classes := s.classes[:0]
	if rare > 0 {
		for _, el := range rareEls {
			ss.postings += int64(len(x.post[el]))
			for _, p := range x.post[el] {
				planes := s.rare[p.le]
				if len(planes) == 0 {
					rows := (len(x.byLen[p.le].ids) + 63) / 64
					planes = slices.Grow(s.rare[p.le][:0], rows*np)[:rows*np]
					clear(planes)
					s.rare[p.le] = planes
					classes = append(classes, p.le)
				}
				// Add one at bit pos%64 of the row's counter.
				bit := uint64(1) << uint(p.pos%64)
				w := planes[int(p.pos/64)*np:]
				for j := 0; j < np; j++ {
					if w[j]&bit == 0 {
						w[j] |= bit
						break
					}
					w[j] &^= bit
				}
			}
		}
		ss.probe(rareEls, common, np)
	}
	// An entry of a length outside lengthRange(u + rare) cannot beat
	// best.
	if lo, hi, ok := ss.lengthRange(u + rare); ok && !ss.over() {
		start := min(max(ss.lc, lo), hi)
		for d := 0; !ss.over() && (start-d >= lo || start+d <= hi); d++ {
			for i, le := range [2]int{start - d, start + d} {
				if le < lo || le > hi || (d == 0 && i == 1) || ss.over() {
					continue
				}
				cands := ss.scanClass(s.cands[:0], le, common, rare, np)
				s.cands = cands[:0]
				ss.tryBestFirst(cands)
			}
		}
	}
	for _, le := range classes {
		s.rare[le] = s.rare[le][:0]
	}
	s.classes = classes[:0]
}

// finish records the search's counts and returns its result.
func (ss *noveltySearch) finish() float64 {
	ss.s.pat.reset()
	ss.x.nLCS.Add(ss.computed)
	ss.x.nPostings.Add(ss.postings)
	ss.x.nCounted.Add(ss.counted)
	return ss.best
}

// newBest invalidates the cached need values after best changed.
func (ss *noveltySearch) newBest() {
	s := ss.s
	s.ver++
	if s.ver == 0 {
		clear(s.needVer)
		s.ver = 1
	}
}

// need returns the least number of shared elements with which an entry
// of le tokens could score above best; more than min(lc, le) if none.
func (ss *noveltySearch) need(le int) int {
	s := ss.s
	if s.needVer[le] == s.ver {
		return int(s.need[le])
	}
	m := needAbove(ss.best, ss.lc, le)
	s.need[le], s.needVer[le] = int32(m), s.ver
	return m
}

// try computes the score of entry id and reports whether the search is
// over (best is 1, the highest possible score).
func (ss *noveltySearch) try(id int32) bool {
	return ss.tryTokens(ss.x.entry(id))
}

// tryTokens is try for an entry given by its tokens.
func (ss *noveltySearch) tryTokens(e []int32) bool {
	ss.computed++
	f := scoreFromOverlap(ss.s.pat.lcs(e), ss.lc, len(e)).F
	if f > ss.best {
		ss.best = f
		ss.newBest()
		return f >= 1
	}
	return false
}

// evaluate tries the entries of ids, which share shared[id] elements
// with the candidate, highest count first, while their count could beat
// best; it zeroes their shared counts.
func (ss *noveltySearch) evaluate(ids []int32) {
	x, s := ss.x, ss.s
	cands := s.cands[:0]
	for _, id := range ids {
		c := noveltyCand{id: id, ov: int32(s.shared[id]), le: int32(x.entryLen(id))}
		s.shared[id] = 0
		if int(c.ov) >= ss.need(int(c.le)) {
			cands = append(cands, c)
		}
	}
	s.cands = cands[:0]
	ss.tryBestFirst(cands)
}

// tryBestFirst tries the entries of cands, highest shared count first,
// while their count could beat best.
func (ss *noveltySearch) tryBestFirst(cands []noveltyCand) {
	s := ss.s
	// Counting sort by count, highest first.
	nb := ss.lc + 2
	if cap(s.buckets) < nb {
		s.buckets = make([]int32, nb)
	}
	buckets := s.buckets[:nb]
	clear(buckets)
	for _, c := range cands {
		buckets[ss.lc-int(c.ov)+1]++
	}
	for i := 1; i < nb; i++ {
		buckets[i] += buckets[i-1]
	}
	order := slices.Grow(s.order[:0], len(cands))[:len(cands)]
	for _, c := range cands {
		order[buckets[ss.lc-int(c.ov)]] = c
		buckets[ss.lc-int(c.ov)]++
	}
	s.order = order[:0]
	x := ss.x
	for len(order) > 0 {
		// Eight at a time: first the loads of their tokens, which the
		// processor can overlap, then the LCS.
		blk := order[:min(8, len(order))]
		order = order[len(blk):]
		var toks [8][]int32
		for i, c := range blk {
			if int(c.ov) >= ss.need(int(c.le)) {
				toks[i] = x.entry(c.id)
			}
		}
		for _, e := range toks[:len(blk)] {
			if len(e) > 0 {
				ss.sink += e[0]
			}
		}
		for i, c := range blk {
			if int(c.ov) < ss.need(int(c.le)) {
				if scoreFromOverlap(int(c.ov), ss.lc, int(c.ov)).F <= ss.best {
					return // the rest share no more, and no entry is shorter than ov
				}
				continue
			}
			if toks[i] == nil {
				toks[i] = x.entry(c.id)
			}
			if ss.tryTokens(toks[i]) {
				return
			}
		}
	}
}

// noveltyCand is an entry to try, with its shared count and length.
type noveltyCand struct {
	id, ov, le int32
}

// lengthRange returns the entry lengths for which sharing at most u
// elements could beat best; ok is false when there are none.
func (ss *noveltySearch) lengthRange(u int) (lo, hi int, ok bool) {
	// need(le) ≤ min(u, le) holds on an interval around u: F(le, lc, le)
	// grows with le and F(u, lc, le) falls.
	maxLen := ss.x.maxLen
	p := min(u, maxLen)
	if p < 1 || ss.need(p) > p {
		return 0, 0, false
	}
	lo, hi = p, p
	for lo > 1 && ss.need(lo-1) <= lo-1 {
		lo--
	}
	for hi < maxLen && ss.need(hi+1) <= u {
		hi++
	}
	return lo, hi, true
}

// over reports whether best is 1, which nothing can beat.
func (ss *noveltySearch) over() bool { return ss.best >= 1 }

// probe tries, before the classes are read, a few of the entries that
// share the most rare elements among those holding the rarest ones, for a
// good best early: the rest of the search then tries fewer entries.
func (ss *noveltySearch) probe(rareEls, common []int32, np int) {
	x, s := ss.x, ss.s
	slices.SortFunc(rareEls, func(a, b int32) int { return cmp.Compare(len(x.post[a]), len(x.post[b])) })
	var top [4]noveltyCand // most rare elements first
	budget := 64
	for _, el := range rareEls {
		for _, p := range x.post[el] {
			if budget == 0 {
				break
			}
			budget--
			w := s.rare[p.le][int(p.pos/64)*np:]
			ov := 0
			for j := range np {
				ov |= int(w[j]>>uint(p.pos%64)&1) << uint(j)
			}
			if int32(ov) <= top[len(top)-1].ov {
				continue
			}
			c := noveltyCand{id: p.id, ov: int32(ov), le: p.le}
			for i := range top {
				if c.ov > top[i].ov {
					top[i], c = c, top[i]
				}
			}
		}
	}
	var sigU noveltySig
	for _, el := range common {
		b := x.bit[el]
		sigU[b/64] |= 1 << uint(b%64)
	}
	for _, c := range top {
		if c.ov == 0 {
			break
		}
		if int(c.ov)+sigU.and(x.sigs[c.id]) >= ss.need(int(c.le)) && ss.try(c.id) {
			return
		}
	}
}

// scanClass appends to cands the entries of length le whose shared count,
// rare elements from s.rare[le] and common ones from the class bitmaps,
// could beat best. The entries with no rare element are read only if
// sharing the u common elements alone could beat best.
func (ss *noveltySearch) scanClass(cands []noveltyCand, le int, common []int32, rare, np int) []noveltyCand {
	x, s := ss.x, ss.s
	u := len(common)
	m := ss.need(le)
	if m > min(u+rare, le) {
		return cands
	}
	all := m <= min(u, le) // entries without rare elements can beat best
	planes := s.rare[le]
	if !all && len(planes) == 0 {
		return cands
	}
	cl := x.byLen[le]
	if cl == nil {
		return cands
	}
	nrows := (len(cl.ids) + 63) / 64
	cols := s.cols[:0]
	for _, el := range common {
		cols = append(cols, cl.cols[x.bit[el]][:nrows])
	}
	s.cols = cols[:0]
	npc := bits.Len(uint(u + rare)) // counter planes in use
	wide := npc > 5
	for r := range nrows {
		var p [8]uint64
		if len(planes) > 0 {
			copy(p[:], planes[r*np:r*np+np])
			if !all && p == ([8]uint64{}) {
				continue // no entry of the row shares a rare element
			}
		}
		ss.counted += 64
		if !wide {
			// Columns in pairs: a carry-save adder into the ones, then
			// the carry rippled up.
			p0, p1, p2, p3, p4 := p[0], p[1], p[2], p[3], p[4]
			k := 0
			for ; k+1 < len(cols); k += 2 {
				a, b := cols[k][r], cols[k+1][r]
				h := a&b | (a^b)&p0
				p0 ^= a ^ b
				t := p1 & h
				p1 ^= h
				h = p2 & t
				p2 ^= t
				t = p3 & h
				p3 ^= h
				p4 ^= t
			}
			if k < len(cols) {
				c := cols[k][r]
				t := p0 & c
				p0 ^= c
				c = p1 & t
				p1 ^= t
				t = p2 & c
				p2 ^= c
				c = p3 & t
				p3 ^= t
				p4 ^= c
			}
			p[0], p[1], p[2], p[3], p[4] = p0, p1, p2, p3, p4
		} else {
			for _, col := range cols {
				c := col[r]
				for j := range p {
					p[j], c = p[j]^c, p[j]&c
				}
			}
		}
		ge := noveltyAtLeast(p[:npc], m)
		if rest := len(cl.ids) - r*64; rest < 64 {
			ge &= 1<<uint(rest) - 1
		}
		for ge != 0 {
			j := uint(bits.TrailingZeros64(ge))
			ge &= ge - 1
			ov := int(p[0]>>j&1) | int(p[1]>>j&1)<<1 | int(p[2]>>j&1)<<2 | int(p[3]>>j&1)<<3 | int(p[4]>>j&1)<<4
			if wide {
				ov |= int(p[5]>>j&1)<<5 | int(p[6]>>j&1)<<6 | int(p[7]>>j&1)<<7
			}
			cands = append(cands, noveltyCand{id: cl.ids[r*64+int(j)], ov: int32(ov), le: int32(le)})
		}
	}
	return cands
}

// noveltyAtLeast returns the bits where the bit-sliced counters p (least
// significant plane first) are at least m, 0 ≤ m < 2^len(p).
func noveltyAtLeast(p []uint64, m int) uint64 {
	var gt uint64
	eq := ^uint64(0)
	for j := len(p) - 1; j >= 0; j-- {
		if m>>uint(j)&1 == 1 {
			eq &= p[j]
		} else {
			gt |= eq & p[j]
			eq &^= p[j]
		}
	}
	return gt | eq
}
