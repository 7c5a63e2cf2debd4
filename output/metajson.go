package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// MarshalJSON writes m in the fixed meta schema: every key in a fixed
// order (the keys added after the first schema, most_similar, winner and
// judge, come last in their objects, so readers matching the older
// prefix keep working), null for an absent value (an empty string, a nil slice or
// pointer), and every float with a decimal point or an exponent, so that
// a score of 1 is written 1.0 and a reader that infers types from the
// first lines (Arrow, and so Hugging Face datasets) sees the same type
// on every line. Consensus.Winner is written as WinnerName. A NaN or an
// infinity is an error: JSON cannot hold it.
func (m Meta) MarshalJSON() ([]byte, error) {
	v, err := m.wire()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // as the writers do; a caller's encoder decides
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// wire returns the JSON form of m (see MarshalJSON). The writers encode
// it directly, which spares encoding/json a second pass over the bytes
// of a Marshaler.
func (m *Meta) wire() (*metaJSON, error) {
	if err := m.checkFloats(); err != nil {
		return nil, err
	}
	v := &metaJSON{
		ID:               str(m.ID),
		Type:             str(m.Type),
		InstructionModel: str(m.InstructionModel),
		InstanceModel:    str(m.InstanceModel),
		Ensemble:         m.Ensemble,
		Source:           str(m.Source),
	}
	if m.NoveltyMax != nil {
		f := jsonFloat(*m.NoveltyMax)
		v.NoveltyMax = &f
	}
	if m.MostSimilar != nil {
		v.MostSimilar = make([]similarJSON, len(m.MostSimilar))
		for i, s := range m.MostSimilar {
			v.MostSimilar[i] = similarJSON{Text: s.Text, Score: jsonFloat(s.Score)}
		}
	}
	if c := m.Consensus; c != nil {
		v.Consensus = &consensusJSON{
			Reason: str(c.Reason), Pick: c.Pick, Winner: str(m.WinnerName()),
			Pairwise: jsonFloats(c.Pairwise), Scores: jsonFloats(c.Scores),
			MinPair: jsonFloat(c.MinPair), Judge: jsonFloats(c.Judge),
		}
	}
	return v, nil
}

// checkFloats reports a NaN or an infinity, which neither JSON nor a
// trainer can use, naming its field.
func (m *Meta) checkFloats() error {
	bad := func(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }
	fail := func(field string, f float64) error {
		return fmt.Errorf("meta.%s: %v is not a number JSON can hold", field, f)
	}
	if m.NoveltyMax != nil && bad(*m.NoveltyMax) {
		return fail("novelty_max", *m.NoveltyMax)
	}
	for i, s := range m.MostSimilar {
		if bad(s.Score) {
			return fail(fmt.Sprintf("most_similar[%d].score", i), s.Score)
		}
	}
	c := m.Consensus
	if c == nil {
		return nil
	}
	if bad(c.MinPair) {
		return fail("consensus.min_pair", c.MinPair)
	}
	for _, l := range [...]struct {
		name string
		fs   []float64
	}{{"pairwise", c.Pairwise}, {"scores", c.Scores}, {"judge", c.Judge}} {
		for i, f := range l.fs {
			if bad(f) {
				return fail(fmt.Sprintf("consensus.%s[%d]", l.name, i), f)
			}
		}
	}
	return nil
}

// metaJSON is the wire form of Meta: pointers and nil slices for null,
// floats as json.Number literals that always carry a decimal point.
type metaJSON struct {
	ID               *string        `json:"id"`
	Type             *string        `json:"type"`
	InstructionModel *string        `json:"instruction_model"`
	InstanceModel    *string        `json:"instance_model"`
	Ensemble         []string       `json:"ensemble"`
	Consensus        *consensusJSON `json:"consensus"`
	NoveltyMax       *json.Number   `json:"novelty_max"`
	Source           *string        `json:"source"`
	MostSimilar      []similarJSON  `json:"most_similar"`
}

type consensusJSON struct {
	Reason   *string       `json:"reason"`
	Pick     int           `json:"pick"`
	Pairwise []json.Number `json:"pairwise"`
	Scores   []json.Number `json:"scores"`
	MinPair  json.Number   `json:"min_pair"`
	Winner   *string       `json:"winner"`
	Judge    []json.Number `json:"judge"`
}

type similarJSON struct {
	Text  string      `json:"text"`
	Score json.Number `json:"score"`
}

// str is nil (null) for "" and &s otherwise.
func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func jsonFloats(fs []float64) []json.Number {
	if fs == nil {
		return nil
	}
	out := make([]json.Number, len(fs))
	for i, f := range fs {
		out[i] = jsonFloat(f)
	}
	return out
}

func jsonFloat(f float64) json.Number {
	var buf [32]byte
	return json.Number(appendFloat(buf[:0], f))
}

// appendFloat appends f (finite) in the form the writers use for every
// float: the shortest representation that reads back as f, with a decimal
// point in the mantissa (0.0, 1.0, 0.43, 1.0e-7, 1.5e+21), exponent form
// only where encoding/json uses it (|f| < 1e-6 or ≥ 1e21).
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	var buf [32]byte
	num := strconv.AppendFloat(buf[:0], f, format, -1, 64)
	mant, exp := num, []byte(nil)
	if i := bytes.IndexByte(num, 'e'); i >= 0 {
		mant, exp = num[:i:i], num[i:]
		// e-07 -> e-7, as encoding/json writes it.
		if len(exp) == 4 && exp[2] == '0' {
			exp = []byte{exp[0], exp[1], exp[3]}
		}
	}
	b = append(b, mant...)
	if bytes.IndexByte(mant, '.') < 0 {
		b = append(b, '.', '0')
	}
	return append(b, exp...)
}
