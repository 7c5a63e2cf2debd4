package filter

import "math/bits"

// bitLCSPattern is one token sequence (the pattern) prepared for
// bit-parallel longest-common-subsequence computation against many other
// sequences (the texts), in the style of Allison–Dix and Hyyrö: the LCS
// state is a bit vector V with one bit per pattern position, and each text
// token updates it with one addition and a few logical operations per
// 64-bit word.
//
// Tokens are non-negative integer ids below the vocabulary size given to
// set; a negative id in the pattern is a token that no text contains.
//
// A bitLCSPattern is reusable: set prepares it, reset clears it for the
// next pattern in time proportional to the pattern, not the vocabulary.
// It is not safe for concurrent use.
type bitLCSPattern struct {
	n     int // pattern length in tokens
	words int // 64-bit words per mask, ceil(n/64)

	// One word (n <= 64): mask[t] has bit i set where pattern[i] == t.
	mask []uint64

	// Several words: slot[t] is 1 + the row of t's mask in rows, 0 when t
	// does not occur in the pattern.
	slot []int32
	rows []uint64

	v    []uint64 // state, words long
	toks []int32  // the distinct non-negative tokens that were set
}

// set prepares p for pattern. vocab must exceed every token id of the
// pattern and of every text later passed to lcs.
func (p *bitLCSPattern) set(pattern []int32, vocab int) {
	p.reset()
	p.n = len(pattern)
	p.words = (p.n + 63) / 64
	if p.words <= 1 {
		if len(p.mask) < vocab {
			p.mask = make([]uint64, vocab+vocab/4)
		}
		for i, t := range pattern {
			if t < 0 {
				continue
			}
			if p.mask[t] == 0 {
				p.toks = append(p.toks, t)
			}
			p.mask[t] |= 1 << uint(i)
		}
		return
	}
	if len(p.slot) < vocab {
		p.slot = make([]int32, vocab+vocab/4)
	}
	if cap(p.v) < p.words {
		p.v = make([]uint64, p.words)
	}
	p.v = p.v[:p.words]
	p.rows = p.rows[:0]
	for i, t := range pattern {
		if t < 0 {
			continue
		}
		s := p.slot[t]
		if s == 0 {
			p.toks = append(p.toks, t)
			for range p.words {
				p.rows = append(p.rows, 0)
			}
			s = int32(len(p.rows) / p.words)
			p.slot[t] = s
		}
		p.rows[int(s-1)*p.words+i/64] |= 1 << uint(i%64)
	}
}

// reset undoes set.
func (p *bitLCSPattern) reset() {
	if p.words <= 1 {
		for _, t := range p.toks {
			p.mask[t] = 0
		}
	} else {
		for _, t := range p.toks {
			p.slot[t] = 0
		}
	}
	p.toks = p.toks[:0]
	p.n, p.words = 0, 0
}

// lcs returns the length of the longest common subsequence of the pattern
// and text.
func (p *bitLCSPattern) lcs(text []int32) int {
	switch p.words {
	case 0:
		return 0
	case 1:
		return bitLCSOneWord(p.mask, p.n, text)
	}
	if p.words == 2 {
		return p.lcsTwoWords(text)
	}
	v := p.v
	for i := range v {
		v[i] = ^uint64(0)
	}
	w := p.words
	for _, t := range text {
		s := p.slot[t]
		if s == 0 {
			continue // U = 0 leaves V unchanged
		}
		row := p.rows[int(s-1)*w : int(s)*w]
		var carry uint64
		for j, m := range row {
			x := v[j]
			sum, c := bits.Add64(x, x&m, carry)
			carry = c
			v[j] = sum | (x &^ m)
		}
	}
	ones := 0
	for j := 0; j < w-1; j++ {
		ones += bits.OnesCount64(v[j])
	}
	// Only the low n bits are state; the bits above never feed back into
	// them because addition carries upward only.
	last := v[w-1]
	if r := p.n % 64; r != 0 {
		last &= 1<<uint(r) - 1
	}
	ones += bits.OnesCount64(last)
	return p.n - ones
}

// lcsTwoWords is lcs for patterns of 65 to 128 tokens, with the state in
// registers.
func (p *bitLCSPattern) lcsTwoWords(text []int32) int {
	v0, v1 := ^uint64(0), ^uint64(0)
	rows := p.rows
	for _, t := range text {
		s := int(p.slot[t])
		if s == 0 {
			continue
		}
		m0, m1 := rows[2*s-2], rows[2*s-1]
		sum0, c := bits.Add64(v0, v0&m0, 0)
		sum1, _ := bits.Add64(v1, v1&m1, c)
		v0, v1 = sum0|(v0&^m0), sum1|(v1&^m1)
	}
	if r := p.n % 64; r != 0 {
		v1 &= 1<<uint(r) - 1
	}
	return p.n - bits.OnesCount64(v0) - bits.OnesCount64(v1)
}

// bitLCSOneWord is lcs for patterns of at most 64 tokens.
func bitLCSOneWord(mask []uint64, n int, text []int32) int {
	v := ^uint64(0)
	for _, t := range text {
		u := v & mask[t]
		v = (v + u) | (v - u)
	}
	if n < 64 {
		v &= 1<<uint(n) - 1
	}
	return n - bits.OnesCount64(v)
}
