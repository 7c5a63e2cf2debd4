// Package seeds holds the seed tasks that Ensemble-Instruct starts from: the
// Task type, a streaming loader for Self-Instruct JSONL that reports every
// problem with its file and line, the split into type A (the task needs an
// input) and type B (output only), and the default seed set embedded in the
// binary.
//
// The package never calls models. Loaded tasks are plain values: safe to
// share between goroutines as long as nobody mutates them.
package seeds

import (
	"strings"
)

// Type says whether a task needs an input. The method runs the two types as
// independent pipelines with their own prompts and novelty pools.
type Type string

const (
	// TypeA tasks need an input ("Summarize the passage." + a passage).
	TypeA Type = "A"
	// TypeB tasks are answered from the instruction alone.
	TypeB Type = "B"
)

// Instance is one worked example of a task.
type Instance struct {
	Input  string `json:"input"`
	Output string `json:"output"`
}

// Task is one seed task in the Self-Instruct format.
type Task struct {
	ID               string     `json:"id"`
	Name             string     `json:"name"`
	Instruction      string     `json:"instruction"`
	Instances        []Instance `json:"instances"`
	IsClassification bool       `json:"is_classification"`
}

// Type reports TypeA when the task's first instance has a non-empty input
// (after trimming white space) and TypeB otherwise.
func (t Task) Type() Type {
	if len(t.Instances) > 0 && strings.TrimSpace(t.Instances[0].Input) != "" {
		return TypeA
	}
	return TypeB
}

// Split returns the type-A and type-B tasks, each in their original order.
func Split(tasks []Task) (a, b []Task) {
	for _, t := range tasks {
		if t.Type() == TypeA {
			a = append(a, t)
		} else {
			b = append(b, t)
		}
	}
	return a, b
}

// Stats counts a task set. Its JSON form is what "ensinstruct seeds stats"
// prints.
type Stats struct {
	Tasks          int `json:"tasks"`
	TypeA          int `json:"type_a"`
	TypeB          int `json:"type_b"`
	Classification int `json:"classification"`
}

// Count returns the Stats of tasks.
func Count(tasks []Task) Stats {
	s := Stats{Tasks: len(tasks)}
	for _, t := range tasks {
		if t.Type() == TypeA {
			s.TypeA++
		} else {
			s.TypeB++
		}
		if t.IsClassification {
			s.Classification++
		}
	}
	return s
}
