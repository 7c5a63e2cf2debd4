package llm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Message is one turn of a chat-style request.
type Message struct {
	// Role is "system", "user" or "assistant".
	Role string `json:"role"`
	// Content is the text of the turn.
	Content string `json:"content"`
}

// Request is one generation request, the same for every backend. Exactly one
// of Prompt and Messages is set: Prompt asks for a raw continuation
// (completion style, sent to Ollama as a raw /api/generate prompt and to
// OpenAI-compatible servers as /completions); Messages asks for the next
// assistant turn (chat style, /api/chat or /chat/completions).
//
// The zero values of the sampling fields mean "not set", except Temperature,
// whose zero is greedy decoding and is always sent.
type Request struct {
	// Prompt is the text to continue (completion style).
	Prompt string `json:"prompt,omitempty"`
	// Messages is the conversation to answer (chat style).
	Messages []Message `json:"messages,omitempty"`
	// MaxTokens bounds the number of generated tokens; 0 = backend default.
	MaxTokens int `json:"max_tokens,omitempty"`
	// Temperature is the sampling temperature; 0 = greedy.
	Temperature float64 `json:"temperature"`
	// TopP is the nucleus-sampling mass; 0 = backend default.
	TopP float64 `json:"top_p,omitempty"`
	// TopK limits sampling to the K most likely tokens; 0 = backend default.
	// Ollama honours it; the OpenAI API has no such parameter, so the
	// OpenAI-compatible backend does not send it.
	TopK int `json:"top_k,omitempty"`
	// Seed makes sampling reproducible on backends that support it; nil =
	// not sent.
	Seed *int64 `json:"seed,omitempty"`
	// Stop lists sequences at which generation stops (not included in the
	// text).
	Stop []string `json:"stop,omitempty"`
}

// Chat reports whether r is a chat-style request.
func (r Request) Chat() bool { return len(r.Messages) > 0 }

// validate checks the invariants every backend relies on.
func (r Request) validate() error {
	switch {
	case r.Prompt != "" && len(r.Messages) > 0:
		return errors.New("request has both a prompt and messages; set exactly one")
	case r.Prompt == "" && len(r.Messages) == 0:
		return errors.New("request has neither a prompt nor messages; set exactly one")
	case r.MaxTokens < 0:
		return errors.New("request max tokens is negative")
	case r.Temperature < 0:
		return errors.New("request temperature is negative")
	case r.TopP < 0 || r.TopP > 1:
		return errors.New("request top-p is outside [0, 1]")
	case r.TopK < 0:
		return errors.New("request top-k is negative")
	}
	for i, m := range r.Messages {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return fmt.Errorf("request message %d has role %q (want system, user or assistant)", i, m.Role)
		}
	}
	return nil
}

// Response is the result of one successful generation.
type Response struct {
	// Text is the generated text, without the stop sequence.
	Text string `json:"text"`
	// FinishReason says why generation ended, as the backend reports it:
	// "stop" (end of text or a stop sequence), "length" (MaxTokens reached),
	// or another backend-specific value.
	FinishReason string `json:"finish_reason,omitempty"`
	// PromptTokens and CompletionTokens are the backend's token counts (0
	// when it does not report them).
	PromptTokens     int `json:"prompt_tokens,omitempty"`
	CompletionTokens int `json:"completion_tokens,omitempty"`
	// Latency is the wall time of the backend call that produced the text
	// (for a cached response: of the original call).
	Latency time.Duration `json:"latency_ns,omitempty"`
	// Cached is true when the response was served from the response cache.
	// It is not stored in the cache.
	Cached bool `json:"-"`
	// Truncated is true when the server reports fewer prompt tokens than
	// it was sent: it cut the prompt to fit its context window (Ollama
	// does so silently).
	Truncated bool `json:"truncated,omitempty"`
}

// Model is one backend call: it sends req once, with no retries, limits or
// cache, and returns the reply or an error that wraps one of the package's
// sentinel errors (ErrRateLimited, ErrServer, ErrTimeout, ...) so a caller
// can decide whether to retry. *Ollama and *OpenAI implement it; the Pool
// adds everything else on top.
type Model interface {
	Generate(ctx context.Context, req Request) (Response, error)
}

// Role is what the pipeline uses a model for.
type Role string

// The roles of the method's three stages.
const (
	RoleInstructions Role = "instructions" // stage 1: write new instructions
	RoleInstances    Role = "instances"    // stage 2: write input/output instances
	RoleEnsemble     Role = "ensemble"     // stage 3: answer zero-shot for consensus
	// RoleJudge grades the candidate outputs for the judge selection rule
	// (optional: only that rule needs one).
	RoleJudge Role = "judge"
)

// Roles lists the roles every run needs, in pipeline order.
func Roles() []Role { return []Role{RoleInstructions, RoleInstances, RoleEnsemble} }

// allRoles lists every valid role.
func allRoles() []Role { return append(Roles(), RoleJudge) }

// roleChoices is "instructions, instances or ensemble", for messages.
func roleChoices() string {
	rs := allRoles()
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = string(r)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func (r Role) valid() bool { return slices.Contains(allRoles(), r) }

// Backend names the API a model is served through.
type Backend string

// The supported backends.
const (
	BackendOllama Backend = "ollama" // Ollama's native API (/api/generate, /api/chat)
	BackendOpenAI Backend = "openai" // any OpenAI-compatible API (/completions, /chat/completions)
)

// Style is how the pipeline renders prompts for a model.
type Style string

// The prompt styles.
const (
	StyleCompletion Style = "completion" // a few-shot text to continue (Request.Prompt)
	StyleChat       Style = "chat"       // a conversation (Request.Messages)
)
