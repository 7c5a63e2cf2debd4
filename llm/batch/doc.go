// Package batch is the batch executor: it runs the model calls of
// OpenAI-compatible models whose configuration sets batch (or, from the
// command line, every hosted model) as jobs of the server's Batch API, at
// the batch price, and every other call on the local pool it wraps.
//
// Calls are collected per model. A model's queue is submitted when it
// holds Settings.FlushSize requests, when nothing joined it for
// Settings.FlushIdle, or when the run is blocked waiting for it (no
// other call in flight and nothing new for Settings.Settle). A
// submission uploads a JSONL file to /files (purpose "batch", at most
// 50,000 requests and 200 MB a file: larger queues are split) whose
// lines carry the call's cache key as custom_id and, as body, exactly
// what the synchronous client sends; it creates the job at /batches with
// a 24h completion window, polls it, and reads its output and error
// files. Each result is stored in the run's response cache under the
// same key a synchronous call uses, so the output is the same bytes
// either way.
//
// The run directory keeps a write-ahead journal of the jobs
// (batches.jsonl): a job's requests are recorded before its file is
// uploaded, the file before the job is created, the job before anything
// else happens, each step synced to disk. A process killed at any point
// and started again with the same command re-attaches to the jobs that
// may be live and never puts a request that is in a live job into
// another; requests that came back failed, expired or cancelled are
// resubmitted alone, under the retry policy.
package batch
