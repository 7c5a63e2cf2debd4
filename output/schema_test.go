package output

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/output/outputtest"
)

// generateRecords are records as generate makes them, with every score
// of the awkward kind: whole numbers (0, 1) next to fractions (0.43).
func generateRecords() []Record {
	vals := []float64{0, 1, 0.43}
	var recs []Record
	for i, v := range vals {
		nov := v
		recs = append(recs, Record{
			Instruction: "Instruction " + strconv.Itoa(i), Input: strings.Repeat("x", i), Output: "output",
			Meta: &Meta{
				ID: "id-" + strconv.Itoa(i), Type: []string{"A", "B", "A"}[i],
				InstructionModel: "gen", InstanceModel: "gen-b", Ensemble: []string{"e1", "e2"},
				Consensus: &ConsensusMeta{
					Reason: "agreement", Pick: i, Pairwise: []float64{v, 1, 0.43}, Scores: []float64{v + v, 1, 0},
					MinPair: v,
				},
				NoveltyMax:  &nov,
				MostSimilar: []Similar{{Text: "a seed", Score: v}, {Text: "another", Score: 0}},
			},
		})
	}
	return recs
}

// filterRecords are records as filter makes them: no models, a source.
func filterRecords() []Record {
	var recs []Record
	for i, v := range []float64{1, 0, 0.43} {
		nov := v
		recs = append(recs, Record{
			Instruction: "Q" + strconv.Itoa(i), Output: "A",
			Meta: &Meta{
				ID: "f-" + strconv.Itoa(i), Type: "B", Ensemble: []string{"b.jsonl", "c.jsonl"},
				Consensus:  &ConsensusMeta{Reason: "exact-match", Pick: i % 3, Pairwise: []float64{v, 0, 1}, Scores: []float64{1, v, 0}, MinPair: 0},
				NoveltyMax: &nov, MostSimilar: []Similar{}, Source: "data.jsonl:" + strconv.Itoa(i+1),
			},
		})
	}
	return recs
}

// TestSchemaStable writes generate and filter records in every format,
// with and without meta and a system message, and checks that every
// line has exactly the same inferred schema, nested paths included and
// int told apart from float.
func TestSchemaStable(t *testing.T) {
	for _, set := range []struct {
		name string
		recs []Record
	}{{"generate", generateRecords()}, {"filter", filterRecords()}} {
		for _, f := range Formats() {
			for _, meta := range []bool{false, true} {
				for _, system := range []string{"", "Be brief."} {
					if system != "" && f == FormatAlpaca {
						continue
					}
					t.Run(set.name+"/"+goldenName(f, meta, system != ""), func(t *testing.T) {
						var buf bytes.Buffer
						w, err := NewJSONL(&buf, Options{Format: f, Meta: meta, System: system})
						if err != nil {
							t.Fatal(err)
						}
						for _, r := range set.recs {
							if err := w.Write(r); err != nil {
								t.Fatal(err)
							}
						}
						lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
						first, err := outputtest.Schema([]byte(lines[0]))
						if err != nil {
							t.Fatal(err)
						}
						for i, l := range lines[1:] {
							got, err := outputtest.Schema([]byte(l))
							if err != nil || got != first {
								t.Errorf("line %d schema %s (%v)\nline 1 schema %s", i+2, got, err, first)
							}
						}
						if n, err := outputtest.Check(&buf); err != nil || n != len(set.recs) {
							t.Errorf("Check() = %d, %v", n, err)
						}
						if meta && !strings.Contains(first, "novelty_max:float") {
							t.Errorf("schema %s: want novelty_max as float", first)
						}
					})
				}
			}
		}
	}
}

// TestMetaKeysWithoutMeta checks that a record without provenance still
// gets every meta key (all null) when meta is on.
func TestMetaKeysWithoutMeta(t *testing.T) {
	full, _ := json.Marshal(generateRecords()[0].Meta)
	empty, _ := json.Marshal(Meta{})
	keys := func(b []byte) string {
		dec := json.NewDecoder(bytes.NewReader(b))
		var ks []string
		depth := 0
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			switch v := tok.(type) {
			case json.Delim:
				if v == '{' || v == '[' {
					depth++
				} else {
					depth--
				}
			case string:
				if depth == 1 && dec.More() {
					ks = append(ks, v)
					// skip the value
					var raw json.RawMessage
					if err := dec.Decode(&raw); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		return strings.Join(ks, ",")
	}
	want := "id,type,instruction_model,instance_model,ensemble,consensus,novelty_max,source,most_similar"
	if keys(full) != want || keys(empty) != want {
		t.Errorf("keys of a full meta %q, of an empty one %q; want %q", keys(full), keys(empty), want)
	}
	if string(empty) != `{"id":null,"type":null,"instruction_model":null,"instance_model":null,"ensemble":null,"consensus":null,"novelty_max":null,"source":null,"most_similar":null}` {
		t.Errorf("empty meta: %s", empty)
	}
}

func TestWinnerName(t *testing.T) {
	gen := Meta{InstanceModel: "gen", Ensemble: []string{"e1", "e2"}}
	fil := Meta{Ensemble: []string{"b.jsonl"}}
	tests := []struct {
		m    Meta
		c    *ConsensusMeta
		want string
	}{
		{gen, nil, ""},
		{gen, &ConsensusMeta{Pick: 0}, "gen"},
		{gen, &ConsensusMeta{Pick: 2}, "e2"},
		{gen, &ConsensusMeta{Pick: 3}, ""},
		{gen, &ConsensusMeta{Pick: -1}, ""},
		{gen, &ConsensusMeta{Pick: 1, Winner: "named"}, "named"},
		{fil, &ConsensusMeta{Pick: 0}, OwnCandidate},
		{fil, &ConsensusMeta{Pick: 1}, "b.jsonl"},
	}
	for _, tt := range tests {
		m := tt.m
		m.Consensus = tt.c
		if got := m.WinnerName(); got != tt.want {
			t.Errorf("WinnerName(%+v, %+v) = %q, want %q", tt.m, tt.c, got, tt.want)
		}
	}
}

func TestAppendFloat(t *testing.T) {
	for _, tt := range []struct {
		f    float64
		want string
	}{
		{0, "0.0"}, {1, "1.0"}, {math.Copysign(0, -1), "-0.0"}, {0.43, "0.43"}, {-2, "-2.0"},
		{1e-7, "1.0e-7"}, {1.5e-7, "1.5e-7"}, {1.5e21, "1.5e+21"}, {1e21, "1.0e+21"}, {123456789, "123456789.0"},
		{0.30000000000000004, "0.30000000000000004"}, {1e20, "100000000000000000000.0"}, {1e-6, "0.000001"},
	} {
		if got := string(appendFloat(nil, tt.f)); got != tt.want {
			t.Errorf("appendFloat(%v) = %q, want %q", tt.f, got, tt.want)
		}
	}
	// Every float reads back exactly and differs from encoding/json's form
	// only by the added ".0".
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		f := math.Float64frombits(rng.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		if i%2 == 0 {
			f = float64(rng.IntN(2000)) / 1000
		}
		got := string(appendFloat(nil, f))
		back, err := strconv.ParseFloat(got, 64)
		if err != nil || back != f {
			t.Fatalf("appendFloat(%v) = %q reads back as %v, %v", f, got, back, err)
		}
		std, _ := json.Marshal(f)
		if strings.Replace(got, ".0", "", 1) != string(std) && got != string(std) {
			t.Fatalf("appendFloat(%v) = %q, encoding/json writes %s", f, got, std)
		}
		if !strings.Contains(strings.SplitN(got, "e", 2)[0], ".") {
			t.Fatalf("appendFloat(%v) = %q has no decimal point", f, got)
		}
	}
}

func TestMetaRejectsNaN(t *testing.T) {
	nan := math.NaN()
	for _, tt := range []struct {
		m    Meta
		want string
	}{
		{Meta{NoveltyMax: &nan}, "meta.novelty_max: NaN"},
		{Meta{Consensus: &ConsensusMeta{Scores: []float64{1, math.Inf(1)}}}, "meta.consensus.scores[1]: +Inf"},
		{Meta{MostSimilar: []Similar{{Score: 0}, {Score: nan}}}, "meta.most_similar[1].score"},
		{Meta{Consensus: &ConsensusMeta{MinPair: nan}}, "meta.consensus.min_pair"},
	} {
		r := Record{Instruction: "x", Output: "y", Meta: &tt.m}
		w, _ := NewJSONL(&bytes.Buffer{}, Options{Meta: true})
		if err := w.Write(r); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "record 1") {
			t.Errorf("JSONL: %v, want %q", err, tt.want)
		}
		p, _ := NewParquet(&bytes.Buffer{}, Options{Meta: true})
		if err := p.Write(r); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parquet: %v, want %q", err, tt.want)
		}
	}
}

// TestKeptEncodeEqualsMarshal holds Kept.Encode to json.Marshal's bytes,
// for records with every meta field, none, and a NaN it must refuse.
func TestKeptEncodeEqualsMarshal(t *testing.T) {
	var ks []Kept
	for _, r := range append(generateRecords(), filterRecords()...) {
		ks = append(ks, Kept{Instruction: r.Instruction, Input: r.Input, Output: r.Output + " <&>", Meta: r.Meta, Candidates: []string{"a", "b\n"}})
	}
	ks = append(ks, Kept{Instruction: "no meta"}, Kept{Meta: &Meta{}})
	for i, k := range ks {
		var got bytes.Buffer
		enc := json.NewEncoder(&got)
		enc.SetEscapeHTML(false)
		if err := k.Encode(enc); err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		enc = json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(k); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("kept %d:\n got %s\nwant %s", i, got.String(), want.String())
		}
	}
	nan := math.NaN()
	err := Kept{Meta: &Meta{NoveltyMax: &nan}}.Encode(json.NewEncoder(&bytes.Buffer{}))
	if err == nil || !strings.Contains(err.Error(), "meta.novelty_max") {
		t.Errorf("NaN: %v", err)
	}
}
