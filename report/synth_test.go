package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/output"
)

// The synthetic runs below stand in for a generate run of a realistic
// size: the texts come from templates, but every consensus decision is
// the real rule's (filter.Consensus) and, in synthRun, every novelty
// score is the real index's. They follow the run directory's file
// schema: manifest.json, kept.jsonl (alpaca with meta), rejected.jsonl.

var (
	synthTopics = []string{"the water cycle", "a rainy afternoon", "black holes", "the French revolution", "photosynthesis",
		"a lost umbrella", "machine learning", "the stock market", "a mountain village", "recycling", "the moon landing",
		"a friendly robot", "ocean currents", "healthy breakfasts", "the printing press", "remote work", "honey bees",
		"volcanoes", "a job interview", "electric cars", "the Roman empire", "a birthday party", "sleep", "jazz music"}
	synthThings = []string{"fruits", "programming languages", "board games", "capital cities", "musical instruments",
		"prime numbers", "birds", "verbs", "sports", "colors", "vegetables", "planets", "inventions", "rivers"}
	// Templates of type A (they take an input) and B, with a weight:
	// the leading verbs of real instruction sets are skewed.
	synthA = []synthTemplate{
		{8, "Classify the sentiment of the following review as positive or negative."},
		{7, "Summarize the following paragraph about %s in one sentence."},
		{6, "Translate the given sentence into French."},
		{5, "Find the largest number in the list."},
		{4, "Rewrite the sentence in the passive voice."},
		{4, "Given a list of %s, sort them alphabetically."},
		{3, "Extract all the names of people mentioned in the text."},
		{3, "Identify the main topic of the article about %s."},
		{2, "Correct the grammar mistakes in the following text."},
		{2, "Please answer the question based on the passage about %s."},
		{2, "Convert the temperature from Celsius to Fahrenheit."},
		{1, "Detect whether the email is spam."},
		{1, "Paraphrase the given quote about %s."},
	}
	synthB = []synthTemplate{
		{8, "Write a short poem about %s."},
		{7, "Give three examples of %s."},
		{6, "Explain %s to a ten year old."},
		{5, "Generate a list of five %s."},
		{4, "What is the most interesting fact about %s?"},
		{4, "Describe %s in two sentences."},
		{3, "Can you suggest a title for a blog post about %s?"},
		{3, "Create a riddle whose answer is %s."},
		{2, "Name four %s that start with the letter M."},
		{2, "How does %s work?"},
		{1, "Tell me a joke about %s."},
		{1, "Brainstorm names for a podcast about %s."},
	}
	synthQualifiers = []string{"keeping every %s sentence short, for readers who know %s",
		"and mention one %s detail that a fan of %s would enjoy", "in a %s tone, as if explaining %s",
		"without repeating the word %s; compare it with %s", "then rate how %s the result is next to %s",
		"for a %s audience that already read about %s", "with a %s twist and a reference to %s"}
	synthWords = strings.Fields("the a of and to in is that it for on with as was by this are be from at or an which " +
		"water light energy people time year way day world life hand part place case week system program question " +
		"government number night point home small large first last long great little own other old right big high " +
		"different early young important few public bad same able")
)

type synthTemplate struct {
	weight int
	text   string
}

func pickTemplate(rng *rand.Rand, ts []synthTemplate) string {
	total := 0
	for _, t := range ts {
		total += t.weight
	}
	n := rng.IntN(total)
	for _, t := range ts {
		if n -= t.weight; n < 0 {
			return t.text
		}
	}
	return ts[0].text
}

// synthSentence returns sentences of a small grammar, at least n words
// in all.
func synthSentence(rng *rand.Rand, n int) string {
	subjects := []string{"The author", "This method", "A small village", "The answer", "Most people", "The river",
		"Each student", "The new policy", "Our team", "The first chapter", "A good recipe", "The old machine"}
	verbs := []string{"explains", "shows", "describes", "changes", "improves", "depends on", "compares", "follows",
		"repeats", "questions", "simplifies", "summarizes"}
	objects := []string{"the main idea", "a simple rule", "the local economy", "three key steps", "the first example",
		"the final result", "a clear pattern", "the daily routine", "the price of bread", "an old tradition"}
	tails := []string{"in a few words", "over many years", "for most readers", "during the summer", "without extra cost",
		"in the second paragraph", "at the end of the story", "with great care", "before the deadline", ""}
	var b strings.Builder
	for words := 0; words < n; {
		tail := tails[rng.IntN(len(tails))]
		sent := subjects[rng.IntN(len(subjects))] + " " + verbs[rng.IntN(len(verbs))] + " " + objects[rng.IntN(len(objects))]
		if tail != "" {
			sent += " " + tail
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(sent + ".")
		words += len(strings.Fields(sent))
	}
	return b.String()
}

func synthInstruction(rng *rand.Rand, typ string) string {
	t := synthB
	if typ == "A" {
		t = synthA
	}
	s := pickTemplate(rng, t)
	if strings.Contains(s, "%s") {
		list := synthTopics
		if strings.Contains(s, "examples of %s") || strings.Contains(s, "five %s") || strings.Contains(s, "four %s") || strings.Contains(s, "list of %s") {
			list = synthThings
		}
		s = fmt.Sprintf(s, list[rng.IntN(len(list))])
	}
	// Qualifiers make most instructions differ from their template.
	q := synthQualifiers[rng.IntN(len(synthQualifiers))]
	if rng.IntN(4) > 0 {
		q = fmt.Sprintf(q, synthWords[rng.IntN(len(synthWords))], synthTopics[rng.IntN(len(synthTopics))])
		s = strings.TrimSuffix(strings.TrimSuffix(s, "."), "?") + ", " + q + "."
	}
	return s
}

// synthCandidates returns the instance output and the ensemble answers:
// mostly paraphrases of one answer, sometimes a disagreeing or empty one.
func synthCandidates(rng *rand.Rand, k int) []string {
	base := synthSentence(rng, 6+rng.IntN(40))
	out := make([]string, k)
	for i := range out {
		switch r := rng.IntN(100); {
		case r < 35:
			out[i] = base
		case r < 75:
			w := strings.Fields(base)
			for j := range w {
				if rng.IntN(4) == 0 {
					w[j] = synthWords[rng.IntN(len(synthWords))]
				}
			}
			out[i] = strings.Join(w, " ")
		case r < 95:
			out[i] = synthSentence(rng, 3+rng.IntN(12))
		default:
			out[i] = ""
		}
	}
	return out
}

// synthLine is a rejected.jsonl line.
type synthLine struct {
	Reason      string       `json:"reason"`
	Instruction string       `json:"instruction"`
	Input       string       `json:"input"`
	Output      string       `json:"output"`
	Candidates  []string     `json:"candidates,omitempty"`
	Meta        *output.Meta `json:"meta,omitempty"`
	Raw         string       `json:"raw,omitempty"`
}

func consensusMeta(d filter.Decision) *output.ConsensusMeta {
	return &output.ConsensusMeta{Reason: string(d.Reason), Pick: d.Pick, Pairwise: d.Pairwise, Scores: d.Scores, MinPair: d.MinPair}
}

// synthRun writes a run directory of `requests` instruction requests per
// type, with real novelty and consensus decisions, and returns its
// manifest's counts.
func synthRun(t testing.TB, dir string, requests int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	kf, err := os.Create(filepath.Join(dir, KeptFile))
	if err != nil {
		t.Fatal(err)
	}
	rf, err := os.Create(filepath.Join(dir, RejectedFile))
	if err != nil {
		t.Fatal(err)
	}
	kw := output.NewWriter(kf, output.FormatAlpaca, true)
	rw := bufio.NewWriter(rf)
	renc := json.NewEncoder(rw)
	renc.SetEscapeHTML(false)
	reject := func(l synthLine) {
		if err := renc.Encode(l); err != nil {
			t.Fatal(err)
		}
	}
	ensemble := []string{"qwen2.5-7b", "mistral-7b"}
	counts := map[string]*pipeline.Counts{}
	calls := map[string]*ModelCalls{"llama3.1-8b": {}, "qwen2.5-7b": {}, "mistral-7b": {}}
	var timeline []TimePoint
	kept, elapsed := 0, 0.0
	for _, typ := range []string{"A", "B"} {
		c := &pipeline.Counts{Target: requests / 2, Dropped: map[string]int{}}
		counts[typ] = c
		idx := filter.NewIndex()
		for _, s := range synthTopics[:6] {
			idx.Add("Write about " + s)
		}
		for m := range requests {
			c.InstructionRequests++
			calls["llama3.1-8b"].Calls++
			calls["llama3.1-8b"].PromptTokens += 900
			calls["llama3.1-8b"].CompletionTokens += 30
			elapsed += 0.8 + rng.Float64()
			meta := &output.Meta{Type: typ, InstructionModel: "llama3.1-8b"}
			drop := func(reason string, l synthLine) {
				c.Dropped[reason]++
				l.Reason = reason
				reject(l)
			}
			instr := synthInstruction(rng, typ)
			switch r := rng.IntN(100); {
			case r < 6:
				drop("instruction/unparsable", synthLine{Meta: meta, Raw: "2. " + synthSentence(rng, 4) + "\n3."})
				continue
			case r < 9:
				drop("instruction/too-short", synthLine{Instruction: "Do it.", Meta: meta})
				continue
			case r < 11:
				drop("instruction/blacklisted", synthLine{Instruction: "Draw a picture of " + synthTopics[rng.IntN(len(synthTopics))] + ".", Meta: meta})
				continue
			}
			nv := idx.Check(instr, 0.7)
			score := nv.Max
			meta.NoveltyMax = &score
			if !nv.Novel {
				drop("instruction/not-novel", synthLine{Instruction: instr, Meta: meta})
				continue
			}
			idx.Add(instr)
			c.InstructionsAccepted++
			c.InstanceRequests++
			calls["llama3.1-8b"].Calls++
			calls["llama3.1-8b"].PromptTokens += 1400
			calls["llama3.1-8b"].CompletionTokens += 80
			meta.ID = fmt.Sprintf("00000000-0000-5000-8000-%012d", m)
			meta.InstanceModel = "llama3.1-8b"
			input := ""
			if typ == "A" {
				input = synthSentence(rng, 8+rng.IntN(60))
			}
			cands := synthCandidates(rng, 3)
			switch r := rng.IntN(100); {
			case r < 5:
				drop("instance/unparsable", synthLine{Instruction: instr, Meta: meta, Raw: "instruction: " + instr + "\n" + synthSentence(rng, 5)})
				continue
			case r < 8:
				drop("instance/empty-output", synthLine{Instruction: instr, Input: input, Meta: meta})
				continue
			}
			if cands[0] == "" {
				cands[0] = synthSentence(rng, 10)
			}
			c.InstancesValid++
			c.EnsembleCalls += 2
			for _, e := range ensemble {
				calls[e].Calls++
				calls[e].PromptTokens += 60
				calls[e].CompletionTokens += 50
			}
			d := filter.Consensus(cands, filter.ConsensusOptions{})
			c.Decided++
			meta.Ensemble = ensemble
			meta.Consensus = consensusMeta(d)
			switch {
			case !d.Kept:
				drop("consensus/"+string(d.Reason), synthLine{Instruction: instr, Input: input, Output: cands[0], Candidates: cands, Meta: meta})
			case d.Output == "":
				drop("consensus/dropped-empty", synthLine{Instruction: instr, Input: input, Output: cands[0], Candidates: cands, Meta: meta})
			default:
				c.Kept++
				kept++
				if err := kw.Write(output.Record{Instruction: instr, Input: input, Output: d.Output, Meta: meta}); err != nil {
					t.Fatal(err)
				}
			}
			if m%10 == 0 {
				var n, cost float64
				for _, mc := range calls {
					n += float64(mc.Calls)
				}
				cost = n * 0.00021
				timeline = append(timeline, TimePoint{Seconds: math.Round(elapsed*10) / 10, Kept: kept, Calls: int64(n), CostUSD: cost})
			}
		}
		c.Stop = "target"
	}
	for _, f := range []interface{ Close() error }{kf, rf} {
		if f == rf {
			if err := rw.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var totals ModelCalls
	for name, mc := range calls {
		mc.CacheHits = mc.Calls / 10
		mc.Requests = mc.Calls - mc.CacheHits
		mc.LatencyP50Ms, mc.LatencyP90Ms, mc.LatencyP99Ms = 420, 910, 1800
		mc.CostUSD = float64(mc.PromptTokens)*0.15e-6 + float64(mc.CompletionTokens)*0.6e-6
		if name == "mistral-7b" {
			mc.Failures, mc.Retries = 3, 5
		}
		totals.Calls += mc.Calls
		totals.CacheHits += mc.CacheHits
		totals.Retries += mc.Retries
		totals.Failures += mc.Failures
		totals.PromptTokens += mc.PromptTokens
		totals.CompletionTokens += mc.CompletionTokens
		totals.CostUSD += mc.CostUSD
	}
	threshold := 0.7
	man := map[string]any{
		"version": "v0.4.0", "config_hash": "3f9c2a1b7d4e8f6a5c0b9d2e1f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a",
		"seed": 42, "status": "complete", "started": "2026-11-30T02:00:00Z", "finished": "2026-11-30T02:31:12Z",
		"seconds": elapsed,
		"seeds":   map[string]any{"source": "default", "sha256": strings.Repeat("ab", 32), "tasks": 175, "type_a": 125, "type_b": 50},
		"models": []map[string]any{
			{"name": "llama3.1-8b", "backend": "ollama", "model": "llama3.1:8b", "endpoint": "http://127.0.0.1:11434", "roles": []string{"instructions", "instances"}, "weight": 1, "style": "completion"},
			{"name": "qwen2.5-7b", "backend": "ollama", "model": "qwen2.5:7b-instruct", "endpoint": "http://127.0.0.1:11434", "roles": []string{"ensemble"}, "weight": 1, "style": "chat"},
			{"name": "mistral-7b", "backend": "openai", "model": "mistral-7b-instruct", "endpoint": "http://127.0.0.1:8000/v1", "roles": []string{"ensemble"}, "weight": 1, "style": "chat"},
		},
		"novelty_threshold": threshold,
		"output":            map[string]any{"path": "data.jsonl", "format": "alpaca", "meta": true, "records": kept},
		"run_dir":           dir, "counts": counts, "calls": calls, "totals": totals, "timeline": timeline,
	}
	b, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// synthDataset writes a dataset of n records with provenance (alpaca
// with meta), and a rejected file of about n/3 lines, for the size and
// speed checks. Novelty scores are drawn at random; consensus decisions
// are the real rule's, on a pool of candidate sets.
func synthDataset(t testing.TB, dir string, n int) Source {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(n), 11))
	src := Source{Data: filepath.Join(dir, "data.jsonl"), Rejected: filepath.Join(dir, "rejected.jsonl")}
	df, err := os.Create(src.Data)
	if err != nil {
		t.Fatal(err)
	}
	rf, err := os.Create(src.Rejected)
	if err != nil {
		t.Fatal(err)
	}
	dw := output.NewWriter(df, output.FormatAlpaca, true)
	rw := bufio.NewWriterSize(rf, 1<<20)
	renc := json.NewEncoder(rw)
	ensemble := []string{"cand-b.jsonl", "cand-c.jsonl"}
	// A pool of real decisions, drawn from at random: the rule itself is
	// not what this data set measures.
	type decided struct {
		cands []string
		d     filter.Decision
	}
	pool := make([]decided, 500)
	for i := range pool {
		pool[i].cands = synthCandidates(rng, 3)
		pool[i].d = filter.Consensus(pool[i].cands, filter.ConsensusOptions{})
	}
	for kept := 0; kept < n; {
		typ := []string{"A", "B"}[rng.IntN(2)]
		instr := synthInstruction(rng, typ)
		input := ""
		if typ == "A" {
			input = synthSentence(rng, 8+rng.IntN(60))
		}
		nv := rng.Float64() * 0.8
		meta := &output.Meta{ID: fmt.Sprintf("id-%d", kept), Type: typ, NoveltyMax: &nv}
		if nv > 0.7 {
			if err := renc.Encode(synthLine{Reason: "dedup/not-novel", Instruction: instr, Input: input, Output: "x", Meta: meta}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p := pool[rng.IntN(len(pool))]
		cands, d := p.cands, p.d
		meta.Ensemble, meta.Consensus = ensemble, consensusMeta(d)
		if !d.Kept || d.Output == "" {
			if err := renc.Encode(synthLine{Reason: "consensus/" + string(d.Reason), Instruction: instr, Input: input, Output: cands[0], Candidates: cands, Meta: meta}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := dw.WriteBuffered(output.Record{Instruction: instr, Input: input, Output: d.Output, Meta: meta}); err != nil {
			t.Fatal(err)
		}
		kept++
	}
	if err := dw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := rw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := df.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rf.Close(); err != nil {
		t.Fatal(err)
	}
	return src
}
