package output

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// peakRSSMB returns the process's peak resident set size (VmHWM) in MB, or
// -1 where /proc is not available.
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err == nil {
				return float64(kb) / 1024
			}
		}
	}
	return -1
}

// resetPeakRSS resets the process's peak RSS (Linux: writing 5 to
// clear_refs), so that each benchmark reports its own peak even when
// several run in one process. Where it cannot, the peak stays
// process-wide.
func resetPeakRSS() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// benchRecord is a typical record with provenance.
func benchRecord() Record {
	nov := 0.5
	return Record{
		Instruction: "Summarize the following paragraph in one sentence for a busy reader.",
		Input:       strings.Repeat("The committee met on Tuesday to review the budget and agreed to postpone the vote. ", 4),
		Output:      "The committee reviewed the budget on Tuesday but postponed the vote.",
		Meta: &Meta{ID: "00000000-0000-5000-8000-000000000000", Type: "A", InstructionModel: "gen",
			InstanceModel: "gen", Ensemble: []string{"e1", "e2"}, NoveltyMax: &nov,
			Consensus:   &ConsensusMeta{Reason: "agreement", Pick: 0, Pairwise: []float64{0.8, 0.7, 0.75}, Scores: []float64{1.5, 1.55, 1.45}, MinPair: 0.7},
			MostSimilar: []Similar{{Text: "Summarize the paragraph.", Score: 0.5}, {Text: "Shorten the text for a reader.", Score: 0.31}},
		},
	}
}

// BenchmarkSink1M streams one million records with provenance through the
// writer into a real file, flushing each one as generate does, and reports
// the process's peak RSS. The target is < 200 MB: memory must not grow with
// the number of records.
func BenchmarkSink1M(b *testing.B) {
	const n = 1_000_000
	rec := benchRecord()
	resetPeakRSS()
	b.ReportAllocs()
	for b.Loop() {
		f, err := CreateAtomic(b.TempDir() + "/out.jsonl")
		if err != nil {
			b.Fatal(err)
		}
		w := NewWriter(f, FormatOpenAI, true)
		for i := 0; i < n; i++ {
			if err := w.Write(rec); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "records/op")
	b.ReportMetric(peakRSSMB(), "peak-RSS-MB")
}

// BenchmarkParquet1M writes one million records with provenance as one
// Parquet file (openai format, meta on) through Create and Commit, as
// -o data.parquet does, and reports the process's peak RSS. The target
// is < 200 MB: the writer holds one row group, not the file. Run it on
// its own for a clean peak:
//
//	go test ./output -run '^$' -bench Parquet1M -benchtime 1x
func BenchmarkParquet1M(b *testing.B) {
	const n = 1_000_000
	rec := benchRecord()
	resetPeakRSS()
	b.ReportAllocs()
	var size int64
	for b.Loop() {
		path := b.TempDir() + "/out.parquet"
		f, err := Create(path, ContainerParquet, Options{Format: FormatOpenAI, Meta: true})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := f.Write(rec); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Commit(); err != nil {
			b.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		size = st.Size()
	}
	b.ReportMetric(float64(n), "records/op")
	b.ReportMetric(float64(size)/(1<<20), "file-MB")
	b.ReportMetric(peakRSSMB(), "peak-RSS-MB")
}
