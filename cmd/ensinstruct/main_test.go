package main

import (
	"flag"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/internal/testenv"
	"github.com/ensinstruct/ensinstruct/llm/llmtest"

	"github.com/ensinstruct/ensinstruct/internal/testdata"

	"github.com/rogpeppe/go-internal/testscript"
)

var updateScripts = flag.Bool("update", false, "rewrite the expected output in testscript files")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ensinstruct": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the .txtar scripts in testdata/script against the real
// binary. Scripts see:
//   - $SHARED: the repository's testdata/ directory (see testdata/README.md);
//   - $OLLAMA: the test Ollama server from ENSINSTRUCT_TEST_OLLAMA, and the
//     condition [ollama] when it is set;
//   - the command "fakemodels [LATENCY]", which starts a fake model server
//     answering the pipeline's prompts (pipelinetest.Reply) for the rest of
//     the script and sets $FAKE to its URL.
func TestScripts(t *testing.T) {
	// fakeServers maps a running script to its fake model server.
	var fakeServers sync.Map
	shared := testdata.Root(t)
	ollama, requireOllama := testenv.OllamaAddr()
	if ollama == "" && requireOllama {
		t.Errorf("%s is not set but %s=1: the [ollama] scripts cannot run", testenv.OllamaEnv, testenv.RequireOllamaEnv)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		UpdateScripts:       *updateScripts,
		Setup: func(env *testscript.Env) error {
			env.Setenv("SHARED", shared)
			env.Setenv("OLLAMA", ollama)
			return nil
		},
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"fakemodels": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) > 1 {
					ts.Fatalf("usage: fakemodels [LATENCY]")
				}
				var latency time.Duration
				if len(args) == 1 {
					var err error
					if latency, err = time.ParseDuration(args[0]); err != nil {
						ts.Fatalf("fakemodels: %v", err)
					}
				}
				srv := newFakeModelServer(latency)
				ts.Defer(srv.Close)
				ts.Setenv("FAKE", srv.URL)
				fakeServers.Store(ts, srv)
				ts.Defer(func() { fakeServers.Delete(ts) })
			},
			"fakeinstalled": func(ts *testscript.TestScript, neg bool, args []string) {
				v, ok := fakeServers.Load(ts)
				if neg || !ok {
					ts.Fatalf("usage: fakeinstalled MODEL... (after fakemodels)")
				}
				v.(*llmtest.Server).SetInstalled(args...)
			},
			"fakepullfail": func(ts *testscript.TestScript, neg bool, args []string) {
				v, ok := fakeServers.Load(ts)
				if neg || !ok || len(args) != 1 {
					ts.Fatalf("usage: fakepullfail MESSAGE (after fakemodels)")
				}
				v.(*llmtest.Server).SetPullFailure(args[0])
			},
			"fakemissing": func(ts *testscript.TestScript, neg bool, args []string) {
				v, ok := fakeServers.Load(ts)
				if neg || !ok {
					ts.Fatalf("usage: fakemissing MODEL... (after fakemodels)")
				}
				v.(*llmtest.Server).SetMissing(args...)
			},
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "ollama":
				return ollama != "", nil
			}
			return false, nil
		},
	})
}
