package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/output"
)

// maxReportBytes is the size bound docs/report.md promises for a report
// of any dataset (with a realistic number of distinct drop reasons and
// ensemble members): the examples table is a bounded sample and each of
// its texts is cut.
const maxReportBytes = 2 << 20

func renderSize(t testing.TB, src Source) (int, *Figures) {
	t.Helper()
	f, err := Build(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Render(&b, f, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	return b.Len(), f
}

// TestSize100k: the report of a 100k-record dataset (and its rejected
// file) stays under the bound, and its figures count every record.
func TestSize100k(t *testing.T) {
	src := synthDataset(t, t.TempDir(), 100_000)
	size, f := renderSize(t, src)
	t.Logf("100k records: %d bytes, %d examples shown", size, len(f.Examples))
	if size > maxReportBytes {
		t.Errorf("report of 100k records is %d bytes, want at most %d", size, maxReportBytes)
	}
	if f.Lengths[0].N != 100_000 || f.Verbs.Instructions != 100_000 {
		t.Errorf("figures count %d lengths and %d verbs, want 100000", f.Lengths[0].N, f.Verbs.Instructions)
	}
	if f.Groups[0].Shown != DefaultKeptSamples {
		t.Errorf("%d kept examples shown, want %d", f.Groups[0].Shown, DefaultKeptSamples)
	}
	shown := 0
	for _, g := range f.Groups[1:] {
		shown += g.Shown
	}
	if shown > DefaultRejectedSamples {
		t.Errorf("%d rejected examples shown, want at most %d", shown, DefaultRejectedSamples)
	}
}

// TestDeterministic: the same files give the same page, byte for byte.
func TestDeterministic(t *testing.T) {
	dir := t.TempDir()
	synthRun(t, dir, 150, 3)
	var pages [2]bytes.Buffer
	for i := range pages {
		src, err := Resolve(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		f, err := Build(src, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := Render(&pages[i], f, RenderOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(pages[0].Bytes(), pages[1].Bytes()) {
		t.Errorf("two renders of the same files differ (%d and %d bytes)", pages[0].Len(), pages[1].Len())
	}
}

// TestSizeWorstCase: texts far longer than the cut and made of the
// characters HTML escaping expands most, eight candidates per decision,
// long model names and 40 drop reasons still fit the bound.
func TestSizeWorstCase(t *testing.T) {
	dir := t.TempDir()
	src := Source{Data: filepath.Join(dir, "data.jsonl"), Rejected: filepath.Join(dir, "rejected.jsonl")}
	long := strings.Repeat(`"<&>'+`, 200)
	cands := make([]string, 8)
	for i := range cands {
		cands[i] = long
	}
	d := filter.Consensus(cands, filter.ConsensusOptions{})
	ens := make([]string, 7)
	for i := range ens {
		ens[i] = fmt.Sprintf("%s-member-%d", strings.Repeat("m", 40), i)
	}
	nv := 0.5
	var data, rej bytes.Buffer
	w := output.NewWriter(&data, output.FormatAlpaca, true)
	enc := json.NewEncoder(&rej)
	for i := range 300 {
		meta := &output.Meta{ID: fmt.Sprint(i), Type: "A", InstanceModel: strings.Repeat("g", 60), Ensemble: ens,
			Consensus: consensusMeta(d), NoveltyMax: &nv, Source: strings.Repeat("s", 200)}
		text := fmt.Sprint(i) + long
		if err := w.WriteBuffered(output.Record{Instruction: text, Input: text, Output: text, Meta: meta}); err != nil {
			t.Fatal(err)
		}
		if err := enc.Encode(synthLine{Reason: fmt.Sprintf("stage%d/%s", i%40, strings.Repeat("r", 40)),
			Instruction: text, Input: text, Output: text, Candidates: cands, Meta: meta, Raw: text}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for path, b := range map[string][]byte{src.Data: data.Bytes(), src.Rejected: rej.Bytes()} {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	size, f := renderSize(t, src)
	t.Logf("worst case: %d bytes, %d examples shown", size, len(f.Examples))
	if size > maxReportBytes {
		t.Errorf("worst-case report is %d bytes, want at most %d", size, maxReportBytes)
	}
}

// BenchmarkReport100k builds and renders the report of a 100k-record
// dataset with a rejected file of about 40k lines.
func BenchmarkReport100k(b *testing.B) {
	src := synthDataset(b, b.TempDir(), 100_000)
	var in int64
	for _, p := range []string{src.Data, src.Rejected} {
		st, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		in += st.Size()
	}
	b.SetBytes(in)
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		f, err := Build(src, Options{})
		if err != nil {
			b.Fatal(err)
		}
		var out bytes.Buffer
		if err := Render(&out, f, RenderOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/op")
}
