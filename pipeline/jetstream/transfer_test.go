package jetstream

import (
	"context"
	"testing"

	"github.com/ensinstruct/ensinstruct/llm"
)

// TestExportImport moves a local cache's responses into the bucket and
// back into another local cache, byte for byte, keeping what is there.
func TestExportImport(t *testing.T) {
	s := startServer(t, "")
	nc := connect(t, s, "")
	src, err := llm.OpenCache(t.TempDir() + "/a.db")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for i := range 5 {
		src.Put(string(rune('a'+i))+"0000000000000000000000000000000000000000000000000000000000000000"[:63], llm.Response{Text: "r" + string(rune('0'+i)), PromptTokens: i})
	}
	ctx := context.Background()
	n, err := Export(ctx, nc, src, Topology{})
	if err != nil || n.Copied != 5 || n.Present != 0 {
		t.Fatalf("export: %+v, %v", n, err)
	}
	if n, err := Export(ctx, nc, src, Topology{}); err != nil || n.Copied != 0 || n.Present != 5 {
		t.Fatalf("second export: %+v, %v", n, err)
	}
	dst, err := llm.OpenCache(t.TempDir() + "/b.db")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	dst.Put("a000000000000000000000000000000000000000000000000000000000000000"[:64], llm.Response{Text: "r0"})
	n, err = Import(ctx, nc, dst, Topology{})
	if err != nil || n.Copied != 4 || n.Present != 1 {
		t.Fatalf("import: %+v, %v", n, err)
	}
	src.Range(func(k string, want llm.Response) error {
		got, found, err := dst.Get(k)
		got.Cached = false
		if err != nil || !found || got != want {
			t.Errorf("%s: got %+v (%v, %v), want %+v", k, got, found, err, want)
		}
		return nil
	})
}
