package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

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
//   - $SHARED: the shared test data directory (../shared/testdata from the
//     repository root), and the condition [shared] when it exists;
//   - $OLLAMA: the test Ollama server from ENSINSTRUCT_TEST_OLLAMA, and the
//     condition [ollama] when it is set;
//   - the command "fakemodels [LATENCY]", which starts a fake model server
//     answering the pipeline's prompts (pipelinetest.Reply) for the rest of
//     the script and sets $FAKE to its URL.
func TestScripts(t *testing.T) {
	shared, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "testdata"))
	_, err := os.Stat(shared)
	haveShared := err == nil
	ollama := os.Getenv("ENSINSTRUCT_TEST_OLLAMA")
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
			},
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "shared":
				return haveShared, nil
			case "ollama":
				return ollama != "", nil
			}
			return false, nil
		},
	})
}
