package filter

import "unicode/utf8"

// TokenizeStem splits s into Rouge tokens exactly as rouge_score's default
// tokenizer does with stemming on: the tokens of Tokenize, each token longer
// than three characters replaced by its Porter stem (see Stem), keeping
// only tokens that match ^[a-z0-9]+$ (a stem of such a token always does).
// The tokens share one backing string. TokenizeStem is safe for concurrent
// use.
func TokenizeStem(s string) []string {
	// One buffer holds the lowered text, then the stems that are not a
	// prefix of their token; it becomes one string that every token slices.
	buf := make([]byte, 0, len(s)+len(s)/4+16)
	buf = rougeAppendLowered(buf, s)
	lowered := len(buf)

	// stemLen[k] is the length of the k-th token's stem: positive when the
	// stem is a prefix of the token, negative when it was appended to buf.
	var stemLenBuf [64]int32
	stemLen := stemLenBuf[:0]
	for start, i := -1, 0; i <= lowered; i++ {
		if i < lowered && buf[i] != ' ' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start < 0 {
			continue
		}
		tok := buf[start:i:i]
		start = -1
		if len(tok) <= 3 {
			stemLen = append(stemLen, int32(len(tok)))
			continue
		}
		n := len(buf)
		buf = appendStem(buf, tok)
		stem := buf[n:]
		if string(stem) == string(tok[:len(stem)]) {
			stemLen = append(stemLen, int32(len(stem)))
			buf = buf[:n]
		} else {
			stemLen = append(stemLen, -int32(len(stem)))
		}
	}

	text := string(buf)
	tokens := make([]string, 0, len(stemLen))
	tail := lowered
	k := 0
	for start, i := -1, 0; i <= lowered; i++ {
		if i < lowered && text[i] != ' ' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start < 0 {
			continue
		}
		var tok string
		if n := int(stemLen[k]); n >= 0 {
			tok = text[start : start+n]
		} else {
			tok = text[tail : tail-n]
			tail -= n
		}
		k++
		start = -1
		if rougeValidToken(tok) {
			tokens = append(tokens, tok)
		}
	}
	return tokens
}

// rougeAppendLowered appends s to buf the way rouge_score prepares text
// before splitting it: lowercased as Python's str.lower does, with every
// character outside [a-z0-9] replaced by a space.
func rougeAppendLowered(buf []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			buf = appendLowerRune(buf, r)
			continue
		}
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		default:
			c = ' '
		}
		buf = append(buf, c)
		i++
	}
	return buf
}

// rougeValidToken reports whether tok matches ^[a-z0-9]+$.
func rougeValidToken(tok string) bool {
	if tok == "" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// LCS returns the length of the longest common subsequence of the token
// sequences a and b. It takes O(len(a)·len(b)) time and O(min(len(a),
// len(b))) memory. LCS is safe for concurrent use.
func LCS(a, b []string) int {
	if len(a) < len(b) {
		a, b = b, a
	}
	if len(b) == 0 {
		return 0
	}
	// row[j+1] is the LCS of the prefix of a scanned so far and b[:j+1].
	var stack [128]int32
	var row []int32
	if len(b) < len(stack) {
		row = stack[:len(b)+1]
	} else {
		row = make([]int32, len(b)+1)
	}
	for _, x := range a {
		diag := int32(0) // row[j] before this pass: LCS(a[:i], b[:j])
		for j, y := range b {
			up := row[j+1]
			switch {
			case x == y:
				row[j+1] = diag + 1
			case row[j] > up:
				row[j+1] = row[j]
			}
			diag = up
		}
	}
	return int(row[len(b)])
}

// RougeL returns the Rouge-L score of the token sequence pred against
// target, bit for bit as rouge_score computes it: with l the length of their
// longest common subsequence, precision l/len(pred), recall l/len(target),
// F their harmonic mean. If either is empty the score is zero. RougeL is
// safe for concurrent use.
func RougeL(pred, target []string) Score {
	if len(pred) == 0 || len(target) == 0 {
		return Score{}
	}
	return scoreFromOverlap(LCS(pred, target), len(pred), len(target))
}

// Rouge1 returns the Rouge-1 score of pred against target, bit for bit as
// rouge_score computes it: the overlap is the sum over distinct tokens of
// the smaller of their counts in pred and target; precision is
// overlap/len(pred), recall overlap/len(target), F their harmonic mean. If
// either is empty the score is zero. Rouge1 is safe for concurrent use.
func Rouge1(pred, target []string) Score {
	if len(pred) == 0 || len(target) == 0 {
		return Score{}
	}
	return scoreFromOverlap(rougeUnigramOverlap(pred, target), len(pred), len(target))
}

// rougeUnigramOverlap returns Σ min(count in a, count in b) over tokens.
func rougeUnigramOverlap(a, b []string) int {
	if len(a) < len(b) {
		a, b = b, a
	}
	// Short inputs: match each token of a against an unused equal token
	// of b, with no allocation.
	const maxQuadratic = 64
	if len(b) <= maxQuadratic && len(a)*len(b) <= 64*maxQuadratic {
		var used [maxQuadratic]bool
		overlap := 0
		for _, x := range a {
			for j, y := range b {
				if !used[j] && x == y {
					used[j] = true
					overlap++
					break
				}
			}
		}
		return overlap
	}
	counts := make(map[string]int, len(b))
	for _, y := range b {
		counts[y]++
	}
	overlap := 0
	for _, x := range a {
		if counts[x] > 0 {
			counts[x]--
			overlap++
		}
	}
	return overlap
}
