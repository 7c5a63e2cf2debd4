package curate

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline"
)

// synthOpeners start the synthetic instructions: a template-heavy
// mix, as real instruction sets are.
var synthOpeners = []string{
	"Write a short", "Write a", "Give me a list of", "Create a", "Generate three",
	"Describe the", "Explain why the", "Summarize the following", "List some",
	"Find the", "Identify the", "Classify the following", "Suggest a", "Compose an",
	"Rewrite this", "Translate the", "What is the", "How can I", "Tell me about the",
	"Come up with a", "Design a", "Plan a", "Given the text, extract the", "Answer the question about",
}

// synthVocab returns a vocabulary of common function words and
// a few thousand content words made of syllables.
func synthVocab(r *rand.Rand) (function, content []string) {
	function = strings.Fields("the a an of to and in for with on that is your about from by as it this my their some each")
	syl := strings.Fields("ka lo mi ne pu ra si to va we xo yu za be ci do fe gi")
	ends := []string{"", "n", "s", "r", "l", "t", "m", "ng"}
	for _, a := range syl {
		for _, b := range syl {
			for _, e := range ends {
				content = append(content, a+b+e)
			}
		}
	}
	r.Shuffle(len(content), func(i, j int) { content[i], content[j] = content[j], content[i] })
	return function, content
}

// synthInstructions returns n synthetic instructions of 10–20 words,
// deterministic for seed: a template opener, then function words and
// Zipf-distributed content words, so that many pairs share words; about
// one in five is a near duplicate (one to three word edits) of an earlier
// one.
func synthInstructions(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 0xf117e5))
	function, content := synthVocab(r)
	zipf := rand.NewZipf(r, 1.2, 4, uint64(len(content)-1))
	word := func() string {
		if r.IntN(3) == 0 {
			return function[r.IntN(len(function))]
		}
		return content[zipf.Uint64()]
	}
	out := make([]string, 0, n)
	for len(out) < n {
		if len(out) > 20 && r.IntN(5) == 0 {
			w := strings.Fields(out[r.IntN(len(out))])
			for range 1 + r.IntN(3) {
				i := r.IntN(len(w))
				switch r.IntN(3) {
				case 0:
					w[i] = word()
				case 1:
					w = append(w[:i], append([]string{word()}, w[i:]...)...)
				default:
					if len(w) > 10 {
						w = append(w[:i], w[i+1:]...)
					}
				}
			}
			out = append(out, strings.Join(w, " "))
			continue
		}
		w := strings.Fields(synthOpeners[r.IntN(len(synthOpeners))])
		for target := 10 + r.IntN(11); len(w) < target; {
			w = append(w, word())
		}
		out = append(out, strings.Join(w, " ")+".")
	}
	return out
}

// synthConsensus returns n synthetic records with outputs of about
// 50 words and extra candidate outputs for each (cands[j][i] is source
// j's candidate for record i): per record, a candidate repeats the output
// up to case and punctuation (30%), paraphrases it by replacing a fifth to
// two fifths of its words (50%), says something else at the same length
// (10%) or gives a terse answer of one to three rare words (10%), which
// shares nothing with the output and so gets the record dropped.
func synthConsensus(n, extra int, seed uint64) ([]output.Record, [][]string) {
	r := rand.New(rand.NewPCG(seed, 0xc0de))
	function, content := synthVocab(r)
	zipf := rand.NewZipf(r, 1.1, 2, uint64(len(content)-1))
	word := func() string {
		if r.IntN(3) == 0 {
			return function[r.IntN(len(function))]
		}
		return content[zipf.Uint64()]
	}
	text := func(words int) []string {
		w := make([]string, words)
		for i := range w {
			w[i] = word()
		}
		return w
	}
	instr := synthInstructions(n, seed)
	recs := make([]output.Record, n)
	cands := make([][]string, extra)
	for j := range cands {
		cands[j] = make([]string, n)
	}
	for i := range recs {
		own := text(40 + r.IntN(21))
		recs[i] = output.Record{Instruction: instr[i], Output: strings.Join(own, " ") + "."}
		if r.IntN(2) == 0 {
			recs[i].Input = strings.Join(text(5+r.IntN(10)), " ")
		}
		for j := range cands {
			var c []string
			switch p := r.IntN(10); {
			case p < 3:
				c = append([]string(nil), own...)
				c[0] = strings.ToUpper(c[0][:1]) + c[0][1:] + ","
			case p < 8:
				c = append([]string(nil), own...)
				for range len(c) * (1 + r.IntN(2)) / 5 {
					c[r.IntN(len(c))] = word()
				}
			case p < 9:
				c = text(40 + r.IntN(21))
			default:
				c = nil
				for range 1 + r.IntN(3) {
					c = append(c, content[len(content)-1-r.IntN(len(content)/2)])
				}
			}
			cands[j][i] = strings.Join(c, " ")
		}
	}
	return recs, cands
}

// synthJSONL encodes records as alpaca JSONL.
func synthJSONL(recs []output.Record) []byte {
	var b bytes.Buffer
	w := output.NewWriter(&b, output.FormatAlpaca, false)
	for _, r := range recs {
		if err := w.WriteBuffered(r); err != nil {
			panic(err)
		}
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// benchmarkFilter runs Run on JSONL held in memory (input and
// candidate files), decoding with output.Reader and encoding every kept
// record with output.Writer to io.Discard, as the command does. Besides
// the wall time it reports the CPU time per op (cpu-s/op): on a machine
// shared with other work the wall time says more about the neighbours.
func benchmarkFilter(b *testing.B, input []byte, cands [][]byte, opts Options) {
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	b.ResetTimer()
	var st Stats
	cpu0 := cpuTime()
	for b.Loop() {
		o := opts
		o.Candidates = nil
		for _, c := range cands {
			o.Candidates = append(o.Candidates, CandidateSource{Name: "c", Records: output.NewReader(bytes.NewReader(c), "c")})
		}
		w := output.NewWriter(io.Discard, output.FormatAlpaca, false)
		var err error
		st, err = Run(context.Background(), output.NewReader(bytes.NewReader(input), "in"), o,
			func(fr Kept) error { return w.Write(fr.Record) }, nil)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(st.Read), "read")
	b.ReportMetric(float64(st.Kept), "kept")
}

// BenchmarkFilterDedup100k is "ensinstruct filter --dedup" on 100k
// synthetic records (instructions of 10–20 words, ~20% near duplicates);
// the target is at most 10 s per op on two cores.
func BenchmarkFilterDedup100k(b *testing.B) {
	instr := synthInstructions(100_000, 1)
	recs := make([]output.Record, len(instr))
	for i, s := range instr {
		recs[i] = output.Record{Instruction: s, Output: "ok"}
	}
	threshold := pipeline.DefaultNoveltyThreshold
	benchmarkFilter(b, synthJSONL(recs), nil, Options{Dedup: &threshold})
}

// BenchmarkFilterDedup100kIndexOnly is the novelty index's share of
// BenchmarkFilterDedup100k: the same instructions through Index.Dedup in
// batches of the same size, without reading, chunking or writing.
func BenchmarkFilterDedup100kIndexOnly(b *testing.B) {
	instr := synthInstructions(100_000, 1)
	b.ReportAllocs()
	b.ResetTimer()
	kept := 0
	cpu0 := cpuTime()
	for b.Loop() {
		x := filter.NewIndex()
		kept = 0
		for lo := 0; lo < len(instr); lo += chunkSize {
			for _, n := range x.Dedup(instr[lo:min(lo+chunkSize, len(instr))], pipeline.DefaultNoveltyThreshold) {
				if n.Novel {
					kept++
				}
			}
		}
	}
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(kept), "kept")
}

// BenchmarkFilterConsensus100k is "ensinstruct filter --candidates A
// --candidates B" on 100k synthetic records (k = 3 candidates of about 50
// words); the target is at most 10 s per op on two cores.
func BenchmarkFilterConsensus100k(b *testing.B) {
	recs, cands := synthConsensus(100_000, 2, 1)
	var files [][]byte
	for _, outs := range cands {
		cr := make([]output.Record, len(outs))
		for i, o := range outs {
			cr[i] = output.Record{Instruction: recs[i].Instruction, Input: recs[i].Input, Output: o}
		}
		files = append(files, synthJSONL(cr))
	}
	benchmarkFilter(b, synthJSONL(recs), files, Options{})
}

// BenchmarkFilterConsensus10k is the quick variant.
func BenchmarkFilterConsensus10k(b *testing.B) {
	recs, cands := synthConsensus(10_000, 2, 1)
	var files [][]byte
	for _, outs := range cands {
		cr := make([]output.Record, len(outs))
		for i, o := range outs {
			cr[i] = output.Record{Instruction: recs[i].Instruction, Output: o}
		}
		files = append(files, synthJSONL(cr))
	}
	benchmarkFilter(b, synthJSONL(recs), files, Options{})
}
