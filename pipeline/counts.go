package pipeline

import (
	"maps"
	"sync"

	"github.com/ensinstruct/ensinstruct/filter"
)

// Stage names qualify drop reasons in Counts.Dropped.
const (
	StageInstruction = "instruction"
	StageInstance    = "instance"
	StageConsensus   = "consensus"
)

// Why a type's pipeline stopped.
const (
	StopTarget      = "target"      // the target number of examples was kept
	StopBudget      = "budget"      // the request or cost budget was spent
	StopStalled     = "stalled"     // too many fruitless results in a row
	StopInterrupted = "interrupted" // the context was cancelled
	StopFailed      = "failed"      // a model call failed for good
)

// Counts are the numbers of one type's pipeline: how much went into each
// stage, how much came out, and why the rest was dropped. The JSON form is
// what the run manifest stores.
//
// Requests and calls count work started. Decided, Kept and the instance
// and consensus drops count accepted instructions in acceptance order, so
// Decided = Kept + the instance and consensus drops; instructions accepted
// but not decided when the run stopped account for the rest of
// InstructionsAccepted. Instruction drops count every request consumed.
type Counts struct {
	Target               int            `json:"target"`
	InstructionRequests  int            `json:"instruction_requests"`
	InstructionsAccepted int            `json:"instructions_accepted"`
	InstanceRequests     int            `json:"instance_requests"`
	InstancesValid       int            `json:"instances_valid"`
	EnsembleCalls        int            `json:"ensemble_calls"`
	JudgeCalls           int            `json:"judge_calls,omitempty"`
	Decided              int            `json:"decided"`
	Kept                 int            `json:"kept"`
	Dropped              map[string]int `json:"dropped"`
	Stop                 string         `json:"stop,omitempty"`
}

// counter is a Counts shared between a type's goroutines.
type counter struct {
	mu sync.Mutex
	c  Counts
}

func (c *counter) add(f func(*Counts)) {
	c.mu.Lock()
	f(&c.c)
	c.mu.Unlock()
}

func (c *counter) drop(stage string, r filter.Reason) {
	c.add(func(c *Counts) {
		if c.Dropped == nil {
			c.Dropped = map[string]int{}
		}
		c.Dropped[stage+"/"+string(r)]++
	})
}

func (c *counter) snapshot() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.c
	s.Dropped = maps.Clone(c.c.Dropped)
	if s.Dropped == nil {
		s.Dropped = map[string]int{}
	}
	return s
}
