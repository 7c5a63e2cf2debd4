// Package prompts owns every prompt ensinstruct sends and the parsers that
// turn a model's raw reply back into instructions, instances or answers.
//
// There is one prompt per stage of the method:
//
//   - InstructionPrompt asks for one new instruction of a type, showing
//     demonstration instructions (stage 1); ParseInstruction reads the
//     reply.
//   - InstancePrompt asks for one instance (input and output, or output
//     only) of an instruction, with a fixed few-shot template per type
//     (stage 2); ParseInstanceFor or FindInstance reads the reply (the
//     filter package judges what they find). ParseInstanceCompat is the
//     reference implementation's parser, kept for comparison with its data.
//   - AnswerPrompt asks an ensemble model to carry out an instruction
//     zero-shot (stage 3); ParseAnswer cleans the reply.
//
// Every prompt has two renderings, chosen per model: StyleCompletion, the
// raw text a base model continues (the method's original format), and
// StyleChat, system and user messages for instruction-tuned models and
// hosted chat APIs. Each Prompt carries its stop sequences; the parsers cut
// replies at the same places, so they stay correct when a backend ignores
// stops. The parsers only trim and cut: what they return is always a piece
// of the reply.
//
// The templates and the demonstrations of the instance prompts are files
// embedded from templates/ (text/template); the demonstrations are this
// project's own writing. The package holds no mutable state: every function
// is safe for concurrent use. It knows nothing about HTTP or about which
// model answers.
package prompts
