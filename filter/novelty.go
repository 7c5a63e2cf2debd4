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
// The zero value is an empty index ready to use; NewIndex is equivalent.
// Len, Text, Check, Similar and Stats may be called concurrently with each
// other; Add and Dedup modify the index and must not run concurrently with
// any other method. An Index must not be copied after first use.
type Index struct {
	texts []string
	off   []int32      // entry i has the tokens toks[off[i]:off[i+1]]
	sigs  []noveltySig // entry id → its common elements
	toks  []int32      // token ids of all entries, concatenated
	elems []int32      // element ids, parallel to toks
	vocab map[string]int32
	occ   [][]int32       // token id → element id of its 1st, 2nd, … occurrence
	post  [][]noveltyPost // element id → the entries holding it, ascending id
	count []int32         // scratch for Add, by token id, all zero between calls

	// The common elements, at most noveltySigBits of them, each with a bit
	// in the entry signatures; chosen again each time Len doubles.
	bit []int16 // element id → signature bit, -1 if not common
	// byLen[le] lists the entries of le tokens, with bitmaps of their
	// common elements.
	byLen       []*noveltyClass // nil for lengths no entry has
	nextRebuild int
	maxLen      int // tokens of the longest entry

	scratch sync.Pool // *noveltyScratch

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

// addTokens adds text, whose tokens are given.
func (x *Index) addTokens(text string, tokens []string) int {
	if x.vocab == nil {
		x.vocab = make(map[string]int32)
		x.off = append(x.off, 0)
		x.nextRebuild = 64
	}
	id := int32(len(x.texts))
	le := len(tokens)
	for len(x.byLen) <= le {
		x.byLen = append(x.byLen, nil)
	}
	if x.byLen[le] == nil {
		x.byLen[le] = new(noveltyClass)
	}
	post := noveltyPost{id: id, le: int32(le), pos: int32(len(x.byLen[le].ids))}
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
	var sig noveltySig
	for _, t := range x.toks[start:] {
		k := x.count[t]
		x.count[t]++
		if int(k) == len(x.occ[t]) {
			x.occ[t] = append(x.occ[t], int32(len(x.post)))
			x.post = append(x.post, nil)
			x.bit = append(x.bit, -1)
		}
		el := x.occ[t][k]
		x.elems = append(x.elems, el)
		x.post[el] = append(x.post[el], post)
		if b := x.bit[el]; b >= 0 {
			sig[b/64] |= 1 << uint(b%64)
		}
	}
	for _, t := range x.toks[start:] {
		x.count[t] = 0
	}
	x.texts = append(x.texts, text)
	x.off = append(x.off, int32(len(x.toks)))
	x.sigs = append(x.sigs, sig)
	x.maxLen = max(x.maxLen, le)
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
	els := make([]int32, len(x.post))
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
	// exact to the bit, whether the candidate is novel or not. With no
	// entries to compare, Max is 0 and Novel is true.
	Max float64
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
	batch := min(noveltyBatch, len(texts))
	tokens := make([][]string, batch)
	queries := make([]noveltyQuery, batch)
	for lo := 0; lo < len(texts); lo += batch {
		hi := min(lo+batch, len(texts))
		start := x.Len()
		// Phase 1, in parallel: each text against the index as of now.
		// The index is only read.
		var next atomic.Int64
		next.Store(int64(lo))
		const chunk = 8
		var wg sync.WaitGroup
		for _, s := range scratch {
			wg.Go(func() {
				for {
					i0 := int(next.Add(chunk)) - chunk
					if i0 >= hi {
						return
					}
					for i := i0; i < min(i0+chunk, hi); i++ {
						tokens[i-lo] = Tokenize(texts[i])
						q := &queries[i-lo]
						x.encode(s, q, tokens[i-lo])
						out[i] = x.decide(s, q, 0, threshold, 0)
					}
				}
			})
		}
		wg.Wait()
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
				out[i] = x.decide(s, q, out[i].Max, threshold, start)
			}
			if out[i].Novel {
				x.addTokens(texts[i], tokens[i-lo])
			}
		}
		clear(tokens)
	}
	return out
}

// noveltyBatch is the number of texts that Dedup checks in parallel
// before accepting any of them. Larger batches leave the workers less
// idle at the end of each; smaller ones leave less for the sequential
// phase.
const noveltyBatch = 256

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
		return Novelty{Novel: best <= threshold || minID == 0, Max: best}
	}
	// Every entry scores at least 0, and none above 1.
	best = x.search(s, q, max(best, 0), minID)
	return Novelty{Novel: best <= threshold, Max: best}
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
	top := min(ss.lc, le)
	m := min(max(int(ss.best*float64(ss.lc+le)/2), 1), top+1)
	for m > 1 && scoreFromOverlap(m-1, ss.lc, le).F > ss.best {
		m--
	}
	for m <= top && scoreFromOverlap(m, ss.lc, le).F <= ss.best {
		m++
	}
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
