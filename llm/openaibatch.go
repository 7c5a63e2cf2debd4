package llm

import (
	"encoding/json"
	"fmt"
	"net/http"

	openai "github.com/sashabaranov/go-openai"
)

// The endpoints of an OpenAI-compatible server that a Batch API job can
// run, as a batch input line names them.
const (
	BatchChatURL       = "/v1/chat/completions"
	BatchCompletionURL = "/v1/completions"
)

// OpenAIBatchRequest returns what a line of a Batch API input file holds
// for req sent to model: the endpoint (BatchChatURL or BatchCompletionURL)
// and the JSON body, byte for byte the body the OpenAI-compatible backend
// sends for req synchronously (the same mapping: the greedy temperature
// rule, no top_k). An invalid request wraps ErrBadRequest.
func OpenAIBatchRequest(model string, req Request) (url string, body []byte, err error) {
	if err := req.validate(); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	var v any
	if req.Chat() {
		url, v = BatchChatURL, chatRequest(model, req)
	} else {
		url, v = BatchCompletionURL, completionRequest(model, req)
	}
	// go-openai encodes a request body with encoding/json.
	if body, err = json.Marshal(v); err != nil {
		return "", nil, fmt.Errorf("%w: encoding the request: %w", ErrBadRequest, err)
	}
	return url, body, nil
}

// ParseOpenAIReply returns the Response that the OpenAI-compatible backend
// makes of a successful reply body from the endpoint url (BatchChatURL: a
// chat completion object; BatchCompletionURL: a completion object), such
// as the body of a Batch API output line. A body that is not such an
// object, or has no choice, wraps ErrBadResponse. Latency is left zero.
func ParseOpenAIReply(url string, body []byte) (Response, error) {
	var out Response
	var err error
	if url == BatchChatURL {
		var r openai.ChatCompletionResponse
		if err = json.Unmarshal(body, &r); err == nil {
			out, err = fromChat(r)
		}
	} else {
		var r openai.CompletionResponse
		if err = json.Unmarshal(body, &r); err == nil {
			out, err = fromCompletion(r)
		}
	}
	if err != nil {
		return Response{}, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return out, nil
}

// OpenAIAccess is what a client of an OpenAI-compatible server's other
// APIs (files, batches) needs to reach the server exactly as a model's own
// client does. The zero value reaches nothing; build one with
// NewOpenAIAccess. It is safe for concurrent use.
type OpenAIAccess struct {
	// BaseURL is the normalized base URL, including /v1; it may carry
	// credentials (use Endpoint in messages).
	BaseURL string
	// Endpoint is BaseURL without credentials.
	Endpoint string
	// Header holds what every request sends: the Authorization of the
	// model's API key (when one is set), the User-Agent and the model's
	// extra headers with ${NAME} references expanded.
	Header http.Header
	redact *redactor
}

// NewOpenAIAccess returns the access of an OpenAI-compatible model,
// reading its API key and header references through getenv. A hosted
// model whose key variable is unset is an error naming the variable.
func NewOpenAIAccess(mc ModelConfig, getenv func(string) string) (OpenAIAccess, error) {
	if mc.Backend != BackendOpenAI {
		return OpenAIAccess{}, fmt.Errorf("backend %q has no OpenAI-compatible API", mc.Backend)
	}
	mc, err := mc.withDefaults(getenv)
	if err != nil {
		return OpenAIAccess{}, err
	}
	hdr, secrets, err := expandHeaders(mc.Headers, getenv)
	if err != nil {
		return OpenAIAccess{}, err
	}
	a := OpenAIAccess{BaseURL: mc.Endpoint, Endpoint: redactURL(mc.Endpoint), Header: make(http.Header, len(hdr)+2)}
	for k, v := range hdr {
		a.Header.Set(k, v)
	}
	a.Header.Set("User-Agent", userAgent)
	key := getenv(mc.APIKeyEnv)
	switch {
	case key != "":
		a.Header.Set("Authorization", "Bearer "+key)
		secrets = append(secrets, key)
	case !isLocalHost(mc.Endpoint):
		return OpenAIAccess{}, FieldErrorf([]string{"api_key_env"},
			"environment variable %s is not set; export it with the API key for %s", mc.APIKeyEnv, a.Endpoint)
	}
	a.redact = newRedactor(secrets...)
	return a, nil
}

// Redact returns s with the access's secrets (the API key, header values
// from the environment) replaced.
func (a OpenAIAccess) Redact(s string) string { return a.redact.text(s) }

// Scrub returns err with the access's secrets removed from its message
// and from the body of any *StatusError in it; errors.Is and errors.As
// still see what it wraps.
func (a OpenAIAccess) Scrub(err error) error { return a.redact.scrub(err) }
