package output

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/ensinstruct/ensinstruct/internal/testenv"
)

// readbackDir holds the independent Parquet checker (check.js, hyparquet).
const readbackDir = "testdata/readback"

// writeBoth writes recs with o as JSONL and as Parquet into dir and
// returns the two paths.
func writeBoth(t *testing.T, dir, name string, o Options, recs []Record) (jsonl, pq string) {
	t.Helper()
	jsonl, pq = filepath.Join(dir, name+".jsonl"), filepath.Join(dir, name+".parquet")
	for _, out := range []struct {
		path string
		c    Container
	}{{jsonl, ContainerJSONL}, {pq, ContainerParquet}} {
		f, err := Create(out.path, out.c, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := f.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		if f.Count() != len(recs) {
			t.Errorf("%s: Count() = %d, want %d", out.path, f.Count(), len(recs))
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return jsonl, pq
}

// TestParquetReadBack writes the same records as JSONL and as Parquet in
// every format, with and without meta and a system message, and has
// hyparquet (a JavaScript implementation, not the writer's library) read
// the Parquet file back and compare every row, column type and null with
// the JSONL lines.
func TestParquetReadBack(t *testing.T) {
	node := testenv.Node(t, readbackDir, "hyparquet")
	dir := t.TempDir()
	recs := append(append(sampleRecords(), generateRecords()...), filterRecords()...)
	for _, f := range Formats() {
		for _, meta := range []bool{false, true} {
			for _, system := range []string{"", "Be brief."} {
				if system != "" && f == FormatAlpaca {
					continue
				}
				name := goldenName(f, meta, system != "")
				t.Run(name, func(t *testing.T) {
					jsonl, pq := writeBoth(t, dir, name, Options{Format: f, Meta: meta, System: system}, recs)
					out, err := exec.Command(node, filepath.Join(readbackDir, "check.js"), pq, jsonl).CombinedOutput()
					if err != nil {
						t.Fatalf("check.js: %v\n%s", err, out)
					}
					if !strings.HasPrefix(string(out), strconv.Itoa(len(recs))+" rows match") {
						t.Errorf("check.js said %q", out)
					}
				})
			}
		}
	}
}

// TestParquetReadBackDetectsDifferences makes sure the checker is not a
// rubber stamp: a JSONL file that differs from the Parquet one in a
// value, a type (int for float), a null or a row count must fail it.
func TestParquetReadBackDetectsDifferences(t *testing.T) {
	node := testenv.Node(t, readbackDir, "hyparquet")
	dir := t.TempDir()
	jsonl, pq := writeBoth(t, dir, "x", Options{Format: FormatOpenAI, Meta: true}, generateRecords())
	good, err := os.ReadFile(jsonl)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, old, new, want string }{
		{"value", `"Instruction 0"`, `"Instruction zero"`, `row 1.messages[0].content: JSONL "Instruction zero", Parquet "Instruction 0"`},
		{"int for float", `"novelty_max":1.0`, `"novelty_max":1`, "row 2.meta.novelty_max: JSONL int (1), column is double"},
		{"null for value", `"source":null`, `"source":"s"`, "row 1.meta.source: JSONL string, Parquet null"},
		{"extra row", "", "", "row count: JSONL 4, Parquet 3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(string(good), tt.old, tt.new, 1)
			if tt.old == "" {
				bad += strings.SplitAfter(string(good), "\n")[0]
			}
			if bad == string(good) {
				t.Fatalf("%q not found in the JSONL", tt.old)
			}
			path := filepath.Join(dir, tt.name+".jsonl")
			if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(node, filepath.Join(readbackDir, "check.js"), pq, path).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.want) {
				t.Errorf("check.js: %v\n%s\nwant a failure saying %q", err, out, tt.want)
			}
		})
	}
}

// TestParquetDeterministic checks that the same records give the same
// bytes, as a resumed run needs.
func TestParquetDeterministic(t *testing.T) {
	recs := append(sampleRecords(), generateRecords()...)
	var files [2][]byte
	for i := range files {
		var buf bytes.Buffer
		p, err := NewParquet(&buf, Options{Format: FormatShareGPT, Meta: true, System: "s"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := p.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		files[i] = buf.Bytes()
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Errorf("two writes of the same records differ (%d and %d bytes)", len(files[0]), len(files[1]))
	}
}

// TestParquetRowGroups checks that rows are cut into row groups as they
// stream, so the writer never holds more than one group.
func TestParquetRowGroups(t *testing.T) {
	if parquetGroupRows != 10_000 || parquetGroupBytes != 16<<20 {
		t.Errorf("row group limits %d rows, %d bytes; docs/trainers.md says 10,000 and 16 MiB", parquetGroupRows, parquetGroupBytes)
	}
	rowGroups := func(t *testing.T, b []byte) []int64 {
		t.Helper()
		f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int64
		for _, g := range f.RowGroups() {
			sizes = append(sizes, g.NumRows())
		}
		return sizes
	}
	var buf bytes.Buffer
	p, err := NewParquet(&buf, Options{Format: FormatAlpaca, Meta: true})
	if err != nil {
		t.Fatal(err)
	}
	p.groupRows = 100
	rec := generateRecords()[2]
	for i := 0; i < 205; i++ {
		if err := p.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := p.Write(rec); err == nil {
		t.Error("Write after Close succeeded")
	}
	if got := rowGroups(t, buf.Bytes()); !slices.Equal(got, []int64{100, 100, 5}) {
		t.Errorf("row groups of %v rows, want [100 100 5]", got)
	}
	// Large records cut groups by size before the row count.
	buf.Reset()
	p, _ = NewParquet(&buf, Options{})
	p.groupBytes = 1 << 20
	big := Record{Instruction: "i", Output: strings.Repeat("o", 100<<10)}
	for i := 0; i < 25; i++ {
		if err := p.Write(big); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rowGroups(t, buf.Bytes()); !slices.Equal(got, []int64{11, 11, 3}) {
		t.Errorf("25 records of 100 KiB in row groups of %v rows, want [11 11 3] (1 MiB each)", got)
	}
}

// TestCreateParquetAtomic checks that a Parquet output appears under its
// final name only when complete, as JSONL does.
func TestCreateParquetAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data.parquet")
	c, err := ResolveContainer("", path)
	if err != nil || c != ContainerParquet {
		t.Fatalf("ResolveContainer = %q, %v", c, err)
	}
	f, err := Create(path, c, Options{Format: FormatOpenAI})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Write(sampleRecords()[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("final file exists before Commit: %v", err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(b, []byte("PAR1")) || !bytes.HasSuffix(b, []byte("PAR1")) {
		t.Fatalf("committed file: %d bytes, %v", len(b), err)
	}
	if _, err := os.Stat(path + PartialSuffix); !os.IsNotExist(err) {
		t.Errorf("partial file left after Commit: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}

	// Abandoned: the partial file stays, the final one never appears.
	cut := filepath.Join(dir, "cut.jsonl")
	f, err = Create(cut, ContainerJSONL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Write(sampleRecords()[0]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cut); !os.IsNotExist(err) {
		t.Errorf("final file exists without Commit")
	}
	if b, _ := os.ReadFile(cut + PartialSuffix); !strings.HasPrefix(string(b), `{"instruction":"Name the capital`) {
		t.Errorf("partial file holds %q", b)
	}
	if _, err := Create(filepath.Join(dir, "x.jsonl"), ContainerJSONL, Options{System: "s"}); err == nil {
		t.Error("Create accepted --system with alpaca")
	}
	if _, err := os.Stat(filepath.Join(dir, "x.jsonl"+PartialSuffix)); !os.IsNotExist(err) {
		t.Error("Create left a partial file for invalid options")
	}
}

func TestResolveContainer(t *testing.T) {
	for _, tt := range []struct {
		name, path string
		want       Container
	}{
		{"", "-", ContainerJSONL}, {"", "data.jsonl", ContainerJSONL}, {"", "out/Data.PARQUET", ContainerParquet},
		{"parquet", "-", ContainerParquet}, {"jsonl", "x.parquet", ContainerJSONL},
	} {
		if got, err := ResolveContainer(tt.name, tt.path); err != nil || got != tt.want {
			t.Errorf("ResolveContainer(%q, %q) = %q, %v; want %q", tt.name, tt.path, got, err, tt.want)
		}
	}
	if _, err := ResolveContainer("csv", "x"); err == nil || !strings.Contains(err.Error(), `--container: unknown container "csv"`) {
		t.Errorf("ResolveContainer(csv): %v", err)
	}
}
