package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Transferred counts what Export or Import did.
type Transferred struct {
	// Copied responses were missing at the destination.
	Copied int
	// Present responses were there already (the same key means the same
	// call, so the same response).
	Present int
}

// Export copies every response of a local cache into the results bucket
// (creating the stream and buckets if needed), so that a run started
// locally can continue distributed on another coordinator. Responses
// already in the bucket are kept.
func Export(ctx context.Context, nc *nats.Conn, cache *llm.Cache, t Topology) (Transferred, error) {
	var n Transferred
	res, err := connectResources(ctx, nc, t)
	if err != nil {
		return n, err
	}
	max := nc.MaxPayload()
	err = cache.Range(func(key string, r llm.Response) error {
		v, err := json.Marshal(stored{r})
		if err != nil {
			return err
		}
		if err := checkSize("response "+key, len(v), max); err != nil {
			return err
		}
		return retry(ctx, func(ctx context.Context) error {
			_, err := res.results.Create(ctx, key, v)
			switch {
			case errors.Is(err, jetstream.ErrKeyExists):
				n.Present++
			case err == nil:
				n.Copied++
			default:
				return err
			}
			return nil
		})
	})
	return n, err
}

// Import copies every response of the results bucket that a local cache
// lacks into it, so that a run started distributed can continue locally
// on a machine that was not its coordinator.
func Import(ctx context.Context, nc *nats.Conn, cache *llm.Cache, t Topology) (Transferred, error) {
	var n Transferred
	res, err := connectResources(ctx, nc, t)
	if err != nil {
		return n, err
	}
	w, err := res.results.WatchAll(ctx)
	if err != nil {
		return n, fmt.Errorf("jetstream: reading %s: %w", ResultsBucket, err)
	}
	defer w.Stop()
	for {
		var entry jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return n, fmt.Errorf("jetstream: reading %s: the watch ended early", ResultsBucket)
			}
			entry = e
		}
		if entry == nil {
			return n, nil // every value delivered
		}
		if entry.Operation() != jetstream.KeyValuePut {
			continue
		}
		if has, err := cache.Has(entry.Key()); err != nil {
			return n, err
		} else if has {
			n.Present++
			continue
		}
		var s stored
		if err := json.Unmarshal(entry.Value(), &s); err != nil {
			return n, fmt.Errorf("jetstream: result %s: %w", entry.Key(), err)
		}
		if err := cache.Put(entry.Key(), s.Response); err != nil {
			return n, err
		}
		n.Copied++
	}
}

func connectResources(ctx context.Context, nc *nats.Conn, t Topology) (*resources, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return setup(ctx, js, t)
}
