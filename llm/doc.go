// Package llm talks to language models: the OpenAI-compatible and Ollama
// clients, the pool of named models with roles and per-endpoint limits,
// retries, the response cache and token and cost accounting.
//
// It knows nothing about the stages of the method.
package llm
