package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// OpenAI is a Model served by an OpenAI-compatible API (OpenAI, vLLM, TGI,
// llama.cpp's server, Ollama's /v1, ...) through
// github.com/sashabaranov/go-openai: completion-style requests go to
// /completions, chat-style requests to /chat/completions, never streamed.
// It is safe for concurrent use.
//
// Request mapping: TopK has no OpenAI parameter and is not sent; a
// Temperature of 0 is sent as 1e-6, because the client library drops a zero
// temperature and servers would then use their default (1.0) instead of
// greedy decoding; MaxTokens is sent as max_tokens, which every compatible
// server understands.
type OpenAI struct {
	model    string
	endpoint string // base URL without credentials, for errors
	keyEnv   string // for the hint on auth errors
	key      string // removed from error bodies
	client   *openai.Client
}

// greedyTemperature stands in for temperature 0 (see OpenAI).
const greedyTemperature = 1e-6

// NewOpenAI returns the OpenAI-compatible model mc describes, authenticating
// with apiKey (the caller reads it from the environment; "" sends no
// Authorization header). mc.Endpoint is the base URL including /v1 (default
// https://api.openai.com/v1); mc.Headers are sent as they are. A nil client
// means a default one.
func NewOpenAI(mc ModelConfig, client *http.Client, apiKey string) (*OpenAI, error) {
	if mc.Model == "" {
		return nil, errors.New("openai: missing model name")
	}
	if mc.Endpoint == "" {
		mc.Endpoint = DefaultOpenAIURL
	}
	base, err := normalizeURL(mc.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("openai: endpoint: %w", err)
	}
	if client == nil {
		client = newHTTPClient()
	}
	cfg := openai.DefaultConfig(apiKey)
	cfg.BaseURL = base
	doer := &headerDoer{client: client}
	if len(mc.Headers) > 0 {
		doer.header = make(http.Header, len(mc.Headers))
		for k, v := range mc.Headers {
			doer.header.Set(k, v)
		}
	}
	cfg.HTTPClient = doer
	keyEnv := mc.APIKeyEnv
	if keyEnv == "" {
		keyEnv = DefaultAPIKeyEnv
	}
	return &OpenAI{
		model:    mc.Model,
		endpoint: redactURL(base),
		keyEnv:   keyEnv,
		key:      apiKey,
		client:   openai.NewClientWithConfig(cfg),
	}, nil
}

// Generate sends req once.
func (o *OpenAI) Generate(ctx context.Context, req Request) (Response, error) {
	if err := req.validate(); err != nil {
		return Response{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	info := &replyInfo{}
	ctx = context.WithValue(ctx, replyInfoKey{}, info)
	start := time.Now()
	var out Response
	var err error
	if req.Chat() {
		var r openai.ChatCompletionResponse
		if r, err = o.client.CreateChatCompletion(ctx, chatRequest(o.model, req)); err == nil {
			out, err = fromChat(r)
		}
	} else {
		var r openai.CompletionResponse
		if r, err = o.client.CreateCompletion(ctx, completionRequest(o.model, req)); err == nil {
			out, err = fromCompletion(r)
		}
	}
	if errors.Is(err, errNoChoices) {
		return Response{}, &callError{BackendOpenAI, o.endpoint, o.model, ErrBadResponse, err}
	}
	if err != nil {
		return Response{}, o.classify(ctx, info, err)
	}
	out.Latency = time.Since(start)
	return out, nil
}

// errNoChoices is the problem of a reply without a choice.
var errNoChoices = errors.New("the reply has no choices")

// chatRequest is the body of req as a chat completion for model.
func chatRequest(model string, req Request) openai.ChatCompletionRequest {
	msgs := make([]openai.ChatCompletionMessage, len(req.Messages))
	for i, m := range req.Messages {
		msgs[i] = openai.ChatCompletionMessage{Role: m.Role, Content: m.Content}
	}
	return openai.ChatCompletionRequest{
		Model:       model,
		Messages:    msgs,
		MaxTokens:   req.MaxTokens,
		Temperature: openAITemperature(req),
		TopP:        float32(req.TopP),
		Seed:        openAISeed(req),
		Stop:        req.Stop,
	}
}

// completionRequest is the body of req as a completion for model.
func completionRequest(model string, req Request) openai.CompletionRequest {
	return openai.CompletionRequest{
		Model:       model,
		Prompt:      req.Prompt,
		MaxTokens:   req.MaxTokens,
		Temperature: openAITemperature(req),
		TopP:        float32(req.TopP),
		Seed:        openAISeed(req),
		Stop:        req.Stop,
	}
}

// openAITemperature applies the greedy rule (see OpenAI).
func openAITemperature(req Request) float32 {
	t := float32(req.Temperature)
	if t == 0 {
		t = greedyTemperature
	}
	return t
}

func openAISeed(req Request) *int {
	if req.Seed == nil {
		return nil
	}
	s := int(*req.Seed)
	return &s
}

// fromChat is the Response of a chat completion reply.
func fromChat(r openai.ChatCompletionResponse) (Response, error) {
	if len(r.Choices) == 0 {
		return Response{}, errNoChoices
	}
	return Response{
		Text:             r.Choices[0].Message.Content,
		FinishReason:     string(r.Choices[0].FinishReason),
		PromptTokens:     r.Usage.PromptTokens,
		CompletionTokens: r.Usage.CompletionTokens,
	}, nil
}

// fromCompletion is the Response of a completion reply.
func fromCompletion(r openai.CompletionResponse) (Response, error) {
	if len(r.Choices) == 0 {
		return Response{}, errNoChoices
	}
	out := Response{Text: r.Choices[0].Text, FinishReason: r.Choices[0].FinishReason}
	if r.Usage != nil {
		out.PromptTokens = r.Usage.PromptTokens
		out.CompletionTokens = r.Usage.CompletionTokens
	}
	return out, nil
}

// classify maps an error from go-openai to the package's errors, using the
// status the headerDoer recorded (go-openai loses it when an error body
// cannot be read).
func (o *OpenAI) classify(ctx context.Context, info *replyInfo, err error) error {
	if ctx.Err() != nil || info.status == 0 {
		// No reply: the connection failed, the call timed out or was
		// cancelled, or the client library refused the request (an
		// unsupported model for the endpoint), which classifyTransport
		// reports as ErrBadRequest.
		return classifyTransport(ctx, BackendOpenAI, o.endpoint, o.model, err)
	}
	if info.status >= 300 {
		var body string
		var apiErr *openai.APIError
		var reqErr *openai.RequestError
		switch {
		case errors.As(err, &apiErr):
			body = apiErr.Message
			if code, ok := apiErr.Code.(string); ok && code != "" {
				body = code + ": " + body
			}
		case errors.As(err, &reqErr):
			body = string(reqErr.Body)
		}
		return &StatusError{
			Backend:    BackendOpenAI,
			Endpoint:   o.endpoint,
			Model:      o.model,
			StatusCode: info.status,
			Body:       truncateBody(body, o.key),
			RetryAfter: parseRetryAfter(info.retryAfter, time.Now()),
			keyEnv:     o.keyEnv,
		}
	}
	// A success status whose body was cut off or is not valid JSON.
	return &callError{BackendOpenAI, o.endpoint, o.model, ErrBadResponse, err}
}

// missingKey is the Model of an entry whose API key variable
// is unset: every call fails at once with ErrAuth.
type missingKey struct {
	backend              Backend
	endpoint, model, env string
}

func (m missingKey) Generate(context.Context, Request) (Response, error) {
	return Response{}, &callError{m.backend, m.endpoint, m.model, ErrAuth,
		fmt.Errorf("environment variable %s is not set; export it with the API key for %s", m.env, m.endpoint)}
}
