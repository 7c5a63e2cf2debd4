package report

import (
	"cmp"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"maps"
	"slices"
	"strings"
)

// Names of a run funnel's stages.
const (
	StageRequests  = "instruction requests"
	StageChecks    = "passed checks"
	StageNovel     = "novel"
	StageInstances = "instances parsed"
	StageKept      = "consensus kept"
)

// stageOrder is the order in which the generate and filter commands apply
// their stages; a dataset funnel lists the stages it finds in this order,
// then any others by name.
var stageOrder = []string{"input", "heuristics", "instruction", "dedup", "instance", "consensus", "ensemble"}

// funnels builds one funnel per type: from the manifest's counts for a
// run, otherwise from the kept records and the rejected file.
func (b *builder) funnels() []Funnel {
	if b.man != nil && len(b.man.Counts) > 0 {
		var out []Funnel
		for _, typ := range slices.Sorted(maps.Keys(b.man.Counts)) {
			out = append(out, b.runFunnel(typ, b.man.Counts[typ]))
		}
		return out
	}
	if len(b.keptByType) == 0 && len(b.dropByType) == 0 {
		return nil
	}
	types := map[string]bool{}
	for t := range b.keptByType {
		types[t] = true
	}
	for t := range b.dropByType {
		types[t] = true
	}
	if b.untyped > 0 || types[""] {
		// Some records have no type: one funnel for all.
		kept, drops := 0, map[string]int{}
		for _, n := range b.keptByType {
			kept += n
		}
		for _, d := range b.dropByType {
			for r, n := range d {
				drops[r] += n
			}
		}
		return []Funnel{datasetFunnel("all", kept, drops)}
	}
	var out []Funnel
	for _, t := range slices.Sorted(maps.Keys(types)) {
		out = append(out, datasetFunnel(t, b.keptByType[t], b.dropByType[t]))
	}
	return out
}

// runFunnel is a type's funnel from its manifest counts. The drops of a
// stage are its reasons in the manifest; what is neither dropped nor in
// the next stage was still in progress when the run stopped.
func (b *builder) runFunnel(typ string, c pipeline.Counts) Funnel {
	notNovel := "instruction/not-novel"
	byStage := map[string][]Count{}
	var other []Count
	for _, reason := range slices.Sorted(maps.Keys(c.Dropped)) {
		n := c.Dropped[reason]
		stage, _, _ := strings.Cut(reason, "/")
		switch {
		case reason == notNovel:
			byStage[StageNovel] = append(byStage[StageNovel], Count{reason, n})
		case stage == "instruction":
			byStage[StageChecks] = append(byStage[StageChecks], Count{reason, n})
		case stage == "instance":
			byStage[StageInstances] = append(byStage[StageInstances], Count{reason, n})
		case stage == "consensus":
			byStage[StageKept] = append(byStage[StageKept], Count{reason, n})
		default:
			other = append(other, Count{reason, n})
		}
	}
	byStage[StageKept] = append(byStage[StageKept], other...)
	f := Funnel{Type: typ, Stages: []Stage{
		{Name: StageRequests, Count: c.InstructionRequests},
		{Name: StageChecks, Count: c.InstructionsAccepted + c.Dropped[notNovel]},
		{Name: StageNovel, Count: c.InstructionsAccepted},
		{Name: StageInstances, Count: c.InstancesValid},
		{Name: StageKept, Count: c.Kept},
	}}
	for i := 1; i < len(f.Stages); i++ {
		s := &f.Stages[i]
		s.Drops = sortCounts(byStage[s.Name])
		s.Unfinished = f.Stages[i-1].Count - s.Count - sum(s.Drops)
		if s.Unfinished < 0 {
			b.warn("type %s: the manifest's counts do not add up at %q (%d more dropped than entered)", typ, s.Name, -s.Unfinished)
			s.Unfinished = 0
		}
	}
	return f
}

// datasetFunnel is a funnel from kept and dropped records: every record
// read enters the first stage, and each stage found in the drops removes
// its own.
func datasetFunnel(typ string, kept int, drops map[string]int) Funnel {
	byStage := map[string][]Count{}
	total := kept
	for reason, n := range drops {
		stage, _, _ := strings.Cut(reason, "/")
		byStage[stage] = append(byStage[stage], Count{reason, n})
		total += n
	}
	stages := slices.Collect(maps.Keys(byStage))
	slices.SortFunc(stages, func(a, b string) int {
		ia, ib := slices.Index(stageOrder, a), slices.Index(stageOrder, b)
		if ia < 0 {
			ia = len(stageOrder)
		}
		if ib < 0 {
			ib = len(stageOrder)
		}
		return cmp.Or(cmp.Compare(ia, ib), cmp.Compare(a, b))
	})
	f := Funnel{Type: typ, Stages: []Stage{{Name: "records read", Count: total}}}
	left := total
	for i, stage := range stages {
		d := sortCounts(byStage[stage])
		left -= sum(d)
		name := "passed " + stage
		if i == len(stages)-1 {
			name = "kept"
		}
		f.Stages = append(f.Stages, Stage{Name: name, Count: left, Drops: d})
	}
	if len(stages) == 0 {
		f.Stages = append(f.Stages, Stage{Name: "kept", Count: kept})
	}
	return f
}

func sortCounts(c []Count) []Count {
	slices.SortFunc(c, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name))
	})
	return c
}

func sum(c []Count) int {
	n := 0
	for _, x := range c {
		n += x.Count
	}
	return n
}
