package jetstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/nats-io/nats.go/jetstream"
)

// The JetStream resources every coordinator and worker share. Their names
// are fixed so that processes started from different machines meet.
const (
	// StreamName is the work-queue stream of calls.
	StreamName = "ENSINSTRUCT_CALLS"
	// SubjectPrefix starts every call subject: SubjectPrefix + endpoint
	// hash.
	SubjectPrefix = "ensinstruct.calls."
	// ResultsBucket holds each call's response under its cache key.
	ResultsBucket = "ensinstruct_results"
	// FailuresBucket holds the calls that failed for good, by cache key.
	FailuresBucket = "ensinstruct_failures"

	// metaMaxDeliver is the consumer metadata key that tells workers how
	// many deliveries a call gets before it fails for good.
	metaMaxDeliver = "ensinstruct_max_deliver"
	// failuresTTL is how long a failure stays on record: long enough for
	// a coordinator to come back and read it; it is retried on resume.
	failuresTTL = 24 * time.Hour
)

// Defaults of the Executor's queue settings.
const (
	// DefaultAckWait is how long a worker may hold a call without a sign
	// of life before JetStream hands it to another worker. Workers send
	// InProgress during long calls, so it bounds the detection of a dead
	// worker, not the length of a call.
	DefaultAckWait = 30 * time.Second
	// DefaultMaxDeliver is how many times a call is handed to a worker
	// before it fails for good.
	DefaultMaxDeliver = 5
	// DefaultDuplicateWindow is how long the stream remembers a message
	// id: a coordinator restarted within it re-attaches to its queued
	// calls instead of queueing them again.
	DefaultDuplicateWindow = 10 * time.Minute
)

// endpoint is one model endpoint as the queue sees it: the subject its
// calls go to, its consumer, its limits and the models it serves.
type endpoint struct {
	id       string // llm.EndpointID, no credentials
	url      string // without credentials, for messages
	hash     string // subject token
	limits   llm.EndpointConfig
	models   []string
	backend  llm.Backend
	subject  string
	consumer string
}

// endpointsOf groups a pool's models by endpoint, in configuration order.
func endpointsOf(p *llm.Pool) []*endpoint {
	var eps []*endpoint
	byID := map[string]*endpoint{}
	for _, m := range p.All() {
		id := llm.EndpointID(m.Backend, m.Endpoint)
		ep := byID[m.Endpoint]
		if ep == nil {
			sum := sha256.Sum256([]byte(id))
			h := hex.EncodeToString(sum[:8])
			limits, _ := p.EndpointLimits(m.Name)
			ep = &endpoint{id: id, url: m.Endpoint, hash: h, limits: limits, backend: m.Backend,
				subject: SubjectPrefix + h, consumer: "endpoint-" + h}
			byID[m.Endpoint] = ep
			eps = append(eps, ep)
		}
		ep.models = append(ep.models, m.Name)
	}
	return eps
}

// queueSettings are the consumer settings the coordinator owns.
type queueSettings struct {
	ackWait    time.Duration
	maxDeliver int
}

// consumerConfig is the durable pull consumer of an endpoint: shared by
// every worker, at most MaxAckPending calls out at once. MaxDeliver is
// left unlimited on the server, because a work-queue message that reaches
// the server's limit stays in the stream, undeliverable, with no one to
// report it; workers enforce the limit instead (they see each delivery's
// count) and record the failure.
func consumerConfig(ep *endpoint, q queueSettings) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ep.consumer,
		Description:   "ensinstruct calls for " + ep.url,
		FilterSubject: ep.subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.ackWait,
		MaxDeliver:    -1,
		MaxAckPending: max(ep.limits.MaxConcurrent, 1),
		Metadata:      map[string]string{metaMaxDeliver: strconv.Itoa(q.maxDeliver)},
	}
}

// maxDeliverOf reads the delivery limit from a consumer's metadata.
func maxDeliverOf(cfg jetstream.ConsumerConfig) int {
	n, err := strconv.Atoi(cfg.Metadata[metaMaxDeliver])
	if err != nil || n < 1 {
		return DefaultMaxDeliver
	}
	return n
}

// Topology says how the shared resources are created: how many replicas
// they keep in a cluster, and the stream's duplicate window. The zero
// value (one replica, the default window) suits a single server.
type Topology struct {
	// Replicas is the number of copies of the stream and buckets (1 for a
	// single server, 3 for a 3-node cluster; 0 means 1).
	Replicas int
	// DuplicateWindow is how long the stream drops a second message with
	// the same id; 0 means DefaultDuplicateWindow.
	DuplicateWindow time.Duration
}

// resources are the stream and buckets a process works with.
type resources struct {
	stream   jetstream.Stream
	results  jetstream.KeyValue
	failures jetstream.KeyValue
}

// setup creates the stream and the buckets, or binds to them as they
// are (the first process to create them, or an operator, chose their
// settings). Every coordinator and worker calls it.
func setup(ctx context.Context, js jetstream.JetStream, t Topology) (*resources, error) {
	replicas := max(t.Replicas, 1)
	dup := t.DuplicateWindow
	if dup <= 0 {
		dup = DefaultDuplicateWindow
	}
	var r resources
	err := retry(ctx, func(ctx context.Context) error {
		var err error
		r.stream, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        StreamName,
			Description: "ensinstruct model calls waiting for a worker",
			Subjects:    []string{SubjectPrefix + "*"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			Duplicates:  dup,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			r.stream, err = js.Stream(ctx, StreamName)
		}
		if err != nil {
			return fmt.Errorf("jetstream: stream %s: %w", StreamName, err)
		}
		r.results, err = bucket(ctx, js, jetstream.KeyValueConfig{
			Bucket: ResultsBucket, Description: "ensinstruct responses by cache key",
			Storage: jetstream.FileStorage, Replicas: replicas, History: 1,
		})
		if err != nil {
			return err
		}
		r.failures, err = bucket(ctx, js, jetstream.KeyValueConfig{
			Bucket: FailuresBucket, Description: "ensinstruct calls that failed for good, by cache key",
			Storage: jetstream.FileStorage, Replicas: replicas, History: 1, TTL: failuresTTL,
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// bucket creates a bucket, or binds to it when it exists (perhaps with
// another description or replica count chosen by an operator).
func bucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}
