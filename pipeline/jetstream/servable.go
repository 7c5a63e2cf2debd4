package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
)

// Skipped is a model a worker does not serve, and why.
type Skipped struct {
	// Model is the model's name in the configuration.
	Model string
	// Reason is the missing key or the unreachable endpoint.
	Reason error
}

// Servable returns the models of cfg that this machine can serve: those
// whose API key variable is set (or that need none) and whose endpoint
// answers a dial within timeout. getenv reads the keys. The others are
// returned with the reason. An invalid cfg is an error.
func Servable(ctx context.Context, cfg llm.Config, getenv func(string) string, timeout time.Duration) (serve []string, skipped []Skipped, err error) {
	full, err := llm.NewPool(cfg, llm.WithGetenv(getenv))
	if err != nil {
		return nil, nil, err
	}
	missing := map[string]error{}
	if err := full.MissingKeys(); err != nil {
		for _, e := range unjoin(err) {
			var fe *llm.FieldError
			if errors.As(e, &fe) && len(fe.Path) > 1 {
				missing[fe.Path[1]] = e
			}
		}
	}
	reach := map[string]error{} // by endpoint
	for _, nm := range cfg.Models {
		if err := missing[nm.Name]; err != nil {
			skipped = append(skipped, Skipped{nm.Name, err})
			continue
		}
		info, _ := full.Info(nm.Name)
		rerr, dialed := reach[info.Endpoint]
		if !dialed {
			one, err := llm.NewPool(llm.Config{Models: llm.Models{nm}}, llm.WithGetenv(getenv))
			if err != nil {
				return nil, nil, fmt.Errorf("models.%s: %w", nm.Name, err)
			}
			rerr = one.CheckReachable(ctx, timeout)
			reach[info.Endpoint] = rerr
		}
		if rerr != nil {
			skipped = append(skipped, Skipped{nm.Name, rerr})
			continue
		}
		serve = append(serve, nm.Name)
	}
	if ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	return serve, skipped, nil
}

// unjoin returns the errors of an errors.Join, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
