// Package prompts owns every prompt ensinstruct sends, as embedded template
// files, their completion-style and chat-style renderings, and the parsers
// that turn a model's raw reply back into instructions, instances or answers.
//
// It knows nothing about HTTP or about which model answers.
package prompts
