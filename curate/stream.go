package curate

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"
)

// future is the result of one piece of work, filled in by the goroutine
// that does it.
type future[T any] struct {
	done chan struct{}
	val  T
	err  error
}

func newFuture[T any]() *future[T] { return &future[T]{done: make(chan struct{})} }

func (f *future[T]) set(v T, err error) {
	f.val, f.err = v, err
	close(f.done)
}

// batch groups items into chunks of up to chunkSize. A chunk
// is sent when it is full, when the input ends, or linger after its
// first item came. It closes out.
func batch(ctx context.Context, in <-chan item, out chan<- []item) error {
	defer close(out)
	timer := time.NewTimer(linger)
	defer timer.Stop()
	for {
		first, ok, err := recv(ctx, in)
		if !ok {
			return err
		}
		chunk := make([]item, 1, 64)
		chunk[0] = first
		timer.Reset(linger)
		open := true
	fill:
		for len(chunk) < chunkSize {
			select {
			case it, ok := <-in:
				if !ok {
					open = false
					break fill
				}
				chunk = append(chunk, it)
			case <-timer.C:
				break fill
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := send(ctx, out, chunk); err != nil {
			return err
		}
		if !open {
			return nil
		}
	}
}

// split passes every item of every chunk on as a chunk of its own.
// It closes out.
func split(ctx context.Context, in <-chan []item, out chan<- []item) error {
	defer close(out)
	for {
		select {
		case chunk, ok := <-in:
			if !ok {
				return nil
			}
			for i := range chunk {
				select {
				case out <- chunk[i : i+1 : i+1]:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ordered applies fn to every value from in, running at most n at
// once, and sends the results to out in the order of in. At most 2n
// values are between in and out at any time: a slow value holds back the
// ones after it (the reorder window) but never lets them pile up. It
// closes out and returns fn's first error.
func ordered[T any](ctx context.Context, in <-chan T, out chan<- T, n int, fn func(context.Context, T) (T, error)) error {
	defer close(out)
	g, gctx := errgroup.WithContext(ctx)
	queue := make(chan *future[T], n)
	sem := make(chan struct{}, n)
	g.Go(func() error {
		defer close(queue)
		for {
			v, ok, err := recv(gctx, in)
			if !ok {
				return err
			}
			fu := newFuture[T]()
			if err := send(gctx, queue, fu); err != nil {
				return err
			}
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			g.Go(func() error {
				defer func() { <-sem }()
				r, err := fn(gctx, v)
				fu.set(r, err)
				return err
			})
		}
	})
	g.Go(func() error {
		for fu := range queue {
			select {
			case <-fu.done:
			case <-gctx.Done():
				return gctx.Err()
			}
			if fu.err != nil {
				return fu.err
			}
			if err := send(gctx, out, fu.val); err != nil {
				return err
			}
		}
		return nil
	})
	return g.Wait()
}

// recv receives from ch. ok is false when ch is closed (err nil) or
// ctx is done first (err is ctx.Err()).
func recv[T any](ctx context.Context, ch <-chan T) (v T, ok bool, err error) {
	select {
	case v, ok = <-ch:
		return v, ok, nil
	case <-ctx.Done():
		return v, false, ctx.Err()
	}
}

// send sends v on ch unless ctx is done first.
func send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
