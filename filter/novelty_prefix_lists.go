package filter

import (
	"cmp"
	"math"
	"math/bits"
	"runtime"
	"slices"
)

// prefixList is the posting list of one element and prefix kind. Its
// first sorted postings are in (length group, position, id) order, where
// the group is the entry's length up to prefixGroups−1, which stands for
// that length and longer; when there are prefixDirMin of them or more,
// dirs[dir:] is a directory of where each group starts. The postings
// after them, of entries indexed since, are in id order.
//
// The directory lets a search read, of each length it can score above
// the threshold with, only the postings whose position in the entry's
// order leaves enough elements after it: most of a common element's
// list is not read at all.
type prefixList struct {
	posts  []prefixPost
	sorted int32
	dir    int32 // -1: none
}

const (
	prefixGroups = 256
	prefixDirMin = 32
)

// prefixSortDue sorts the postings of the entries indexed since the last
// sort into the lists' sorted parts when they are many enough, a
// thirty-second of the rest: the lists are then read almost wholly through
// their directories, at a cost of merging every posting about 33 times over
// a set's growth. The merges run on every core (prefixSort), which is why
// the finer step pays: at 1M it took 0.93 of the wall time of a serial
// sort at an eighth.
func (x *Index) prefixSortDue() {
	e := &x.pre
	if e.built && x.Len()-e.sortedN > max(e.sortedN/32, 1024) {
		x.prefixSort()
	}
}

// prefixSort sorts every list's postings into its sorted part and makes
// the directories again. The lists are shared out in chunks of
// prefixSortChunk among GOMAXPROCS goroutines, each with its own merge
// buffer; each chunk builds its own directory slice, and the slices are
// joined in chunk order afterwards, so the result does not depend on the
// schedule.
func (x *Index) prefixSort() {
	e := &x.pre
	chunks := (2*len(e.short) + prefixSortChunk - 1) / prefixSortChunk
	dirs := make([][]int32, chunks)
	workers := min(max(1, runtime.GOMAXPROCS(0)), chunks)
	for len(e.merge) < workers {
		e.merge = append(e.merge, nil)
	}
	parallelFor(chunks, 1, workers, func(w, c int) {
		var d []int32
		lo, hi := e.prefixChunk(c)
		for k := lo; k < hi; k++ {
			l := e.prefixListAt(k)
			if int(l.sorted) < len(l.posts) {
				e.merge[w] = l.sortTail(e.merge[w])
			}
			l.dir = -1
			if len(l.posts) >= prefixDirMin {
				l.dir = int32(len(d))
				d = l.appendDir(d)
			}
		}
		dirs[c] = d
	})
	e.dirs = e.dirs[:0]
	for c, d := range dirs {
		if base := int32(len(e.dirs)); base > 0 {
			lo, hi := e.prefixChunk(c)
			for k := lo; k < hi; k++ {
				if l := e.prefixListAt(k); l.dir >= 0 {
					l.dir += base
				}
			}
		}
		e.dirs = append(e.dirs, d...)
	}
	e.sortedN = x.Len()
}

// prefixSortChunk is the number of lists a prefixSort worker takes at a
// time: small enough to balance two to eight cores, large enough that the
// shared counter is not contended.
const prefixSortChunk = 4096

// prefixChunk returns the range of list numbers (see prefixListAt) in
// prefixSort's chunk c.
func (e *prefixEngine) prefixChunk(c int) (lo, hi int) {
	return c * prefixSortChunk, min((c+1)*prefixSortChunk, 2*len(e.short))
}

// prefixListAt returns list k of the short lists followed by the long ones.
func (e *prefixEngine) prefixListAt(k int) *prefixList {
	if k < len(e.short) {
		return &e.short[k]
	}
	return &e.long[k-len(e.short)]
}

// prefixGroup returns the length group of a posting.
func prefixGroup(p prefixPost) int { return min(int(p.le), prefixGroups-1) }

// comparePrefixPost orders postings by length group, position and id.
func comparePrefixPost(a, b prefixPost) int {
	if c := cmp.Compare(prefixGroup(a), prefixGroup(b)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.pos, b.pos); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// sortTail sorts the postings after the sorted part and merges them into
// it, with buf as scratch; it returns buf, grown if needed.
func (l *prefixList) sortTail(buf []prefixPost) []prefixPost {
	tail := l.posts[l.sorted:]
	slices.SortFunc(tail, comparePrefixPost)
	if l.sorted > 0 {
		buf = append(buf[:0], l.posts[:l.sorted]...)
		a, b, out := buf, tail, l.posts[:0]
		// out never overtakes b: it holds fewer postings than a and b
		// together have been read.
		for len(a) > 0 && len(b) > 0 {
			if comparePrefixPost(b[0], a[0]) < 0 {
				out = append(out, b[0])
				b = b[1:]
			} else {
				out = append(out, a[0])
				a = a[1:]
			}
		}
		copy(out[len(out):len(out)+len(a)], a) // what is left of b is in place
	}
	l.sorted = int32(len(l.posts))
	return buf
}

// appendDir appends the directory of l's sorted part to dirs: the first
// and last length groups held, lo and hi, then where each group from lo
// to hi+1 starts.
func (l *prefixList) appendDir(dirs []int32) []int32 {
	posts := l.posts[:l.sorted]
	lo, hi := prefixGroup(posts[0]), prefixGroup(posts[len(posts)-1])
	dirs = append(dirs, int32(lo), int32(hi))
	k := 0
	for g := lo; g <= hi+1; g++ {
		for k < len(posts) && prefixGroup(posts[k]) < g {
			k++
		}
		dirs = append(dirs, int32(k))
	}
	return dirs
}

// prefixScan is the state of a prefix search's reading of the lists.
type prefixScan struct {
	x     *Index
	need  []int32  // entry length → least shared count
	marks []uint32 // entry id → ver when a candidate already
	ver   uint32
	cands []int32 // the entries not ruled out
	// The candidate's sketch layers: the first three, which most
	// candidates do not exceed, and the rest.
	l0, l1, l2 uint64
	more       []uint64
	upper      int // the bits of every layer but the first
	lc, nq     int // the candidate's tokens and known elements
	minID      int
	postings   int64
}

// enough reports whether the sketch's bound on the elements an entry with
// sketch sk shares with the candidate is m or more. The first layer's
// count plus all of the others' bits (upper) is a bound too, and most
// postings fail it, so the other layers are rarely counted.
func (ps *prefixScan) enough(sk uint64, m int) bool {
	ov := bits.OnesCount64(ps.l0 & sk)
	if ov+ps.upper < m {
		return false
	}
	ov += bits.OnesCount64(ps.l1&sk) + bits.OnesCount64(ps.l2&sk)
	for _, l := range ps.more {
		ov += bits.OnesCount64(l & sk)
	}
	return ov >= m
}

// setLayers makes l the candidate's sketch layers.
func (ps *prefixScan) setLayers(l []uint64) {
	ps.l0, ps.l1, ps.l2, ps.more = l[0], l[1], l[2], l[3:]
	ps.upper = 0
	for _, x := range l[1:] {
		ps.upper += bits.OnesCount64(x)
	}
}

// take makes entry id a candidate, once.
func (ps *prefixScan) take(id int32) {
	if ps.marks[id] != ps.ver {
		ps.marks[id] = ps.ver
		ps.cands = append(ps.cands, id)
	}
}

// scan looks at the entries of list l met at position i of the
// candidate, on the sides short and long allow. Of the sorted part of a
// list with a directory it reads, for each length, only the postings
// whose position passes.
func (ps *prefixScan) scan(l *prefixList, i int, short, long bool) {
	e := &ps.x.pre
	if ps.minID < e.sortedN {
		sorted := l.posts[:l.sorted]
		if l.dir < 0 {
			ps.scanPosts(sorted, i, short, long, false)
		} else {
			dir := e.dirs[l.dir:]
			lo, hi := int(dir[0]), int(dir[1])
			starts := dir[2:]
			first, last := lo, min(hi, prefixGroups-2, len(ps.need)-1)
			if !short {
				first = max(first, ps.lc+1)
			}
			if !long {
				last = min(last, ps.lc)
			}
			rest := ps.nq - i - 1
			for g := first; g <= last; g++ {
				m := int(ps.need[g])
				if m > rest+1 || m > g {
					continue
				}
				posts := sorted[starts[g-lo]:starts[g-lo+1]]
				read := 0
				for _, p := range posts {
					if int(p.pos) > g-m {
						break // the rest of the length's postings are further on
					}
					read++
					if ps.enough(p.sk, m) && int(p.id) >= ps.minID {
						ps.take(p.id)
					}
				}
				ps.postings += int64(read)
			}
			if hi == prefixGroups-1 {
				ps.scanPosts(sorted[starts[hi-lo]:], i, short, long, false)
			}
		}
	}
	ps.scanPosts(l.posts[l.sorted:], i, short, long, true)
}

// scanPosts looks at the entries of posts met at position i of the
// candidate, those with id ≥ minID when they are in id order (and all of
// them otherwise): one is a candidate unless its length, the position or
// its sketch rules it out. An entry's first meeting is at its smallest
// shared element, where the bounds hold; at a later one it is already a
// candidate if it can be.
func (ps *prefixScan) scanPosts(posts []prefixPost, i int, short, long, byID bool) {
	if ps.minID > 0 && byID {
		k, _ := slices.BinarySearchFunc(posts, int32(ps.minID), func(p prefixPost, id int32) int { return cmp.Compare(p.id, id) })
		posts = posts[k:]
	}
	ps.postings += int64(len(posts))
	rest := ps.nq - i - 1
	for _, p := range posts {
		le := int(p.le)
		if le == math.MaxUint16 {
			le = ps.x.entryLen(p.id)
		}
		if longer := le > ps.lc; longer && !long || !longer && !short {
			continue // read on the other side, or not at all
		}
		m := int(ps.need[le])
		if 1+min(rest, le-int(p.pos)-1) < m || int(p.id) < ps.minID {
			continue
		}
		if ps.enough(p.sk, m) {
			ps.take(p.id)
		}
	}
}
