// Package jetstream runs a run's model calls on worker processes through
// NATS JetStream, for runs that outgrow one machine or whose models sit on
// machines the coordinator cannot reach.
//
// The coordinator's Executor publishes each call that neither its local
// cache nor the results bucket can answer on a work-queue stream, on one
// subject per model endpoint, with the call's cache key as its
// Nats-Msg-Id, and waits for the key to appear in the results bucket (a
// key-value watch). Workers (Worker, `ensinstruct worker`) pull the calls
// of the endpoints they can reach from one durable pull consumer per
// endpoint, shared by every worker, whose MaxAckPending is the endpoint's
// max_concurrent: the cap holds across any number of workers. A worker
// executes a call through its own llm.Pool (retries, timeouts, its own API
// keys), stores the response once under the cache key (first writer wins),
// then acknowledges the message. A call that fails for good is written to
// the failures bucket, which the coordinator also watches.
//
// Messages carry the model's name, the request, the sample index and the
// cache key: never an API key or a header. The cache keys are the local
// pool's, so a distributed run produces the same bytes as a local one, and
// a run can move between the two.
//
// StartServer runs an embedded JetStream server for the common case of one
// coordinator and a few workers with no NATS installation.
package jetstream
