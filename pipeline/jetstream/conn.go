package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// The environment variables that hold NATS credentials. Credentials never
// come from flags or files named on the command line, so that they stay
// out of shell histories, process lists and logs.
const (
	// TokenEnv holds a token: the embedded server requires it from every
	// client, and a client sends it to any server.
	TokenEnv = "ENSINSTRUCT_NATS_TOKEN"
	// CredsEnv names a NATS credentials file (a user JWT and its NKey
	// seed), for servers run with decentralized authentication.
	CredsEnv = "ENSINSTRUCT_NATS_CREDS"
)

// Auth is how a process authenticates to NATS. The zero value means no
// authentication. String never prints a secret.
type Auth struct {
	Token     string
	CredsFile string
}

// AuthFromEnv reads TokenEnv and CredsEnv through getenv.
func AuthFromEnv(getenv func(string) string) Auth {
	return Auth{Token: getenv(TokenEnv), CredsFile: getenv(CredsEnv)}
}

// String describes the Auth without its secrets.
func (a Auth) String() string {
	var parts []string
	if a.Token != "" {
		parts = append(parts, "token from "+TokenEnv)
	}
	if a.CredsFile != "" {
		parts = append(parts, "credentials file "+a.CredsFile)
	}
	if len(parts) == 0 {
		return "no authentication"
	}
	return strings.Join(parts, " and ")
}

// ConnectOptions configure Connect.
type ConnectOptions struct {
	// Name identifies the client in the server's monitoring.
	Name string
	Auth Auth
	// Logger receives disconnects, reconnects and asynchronous errors;
	// nil discards them.
	Logger *slog.Logger
	// Server, when set, connects in process to an embedded server
	// instead of dialing the URL.
	Server *Server
	// Wait is how long Connect keeps trying while the server does not
	// answer (a server starting or restarting); 0 tries once. A refused
	// authentication fails at once.
	Wait time.Duration
}

// Connect dials url (a comma-separated list of nats:// or tls:// URLs),
// for up to o.Wait while the server does not answer. Once connected, the
// client reconnects for as long as it lives, buffering what it publishes
// meanwhile.
func Connect(ctx context.Context, rawURL string, o ConnectOptions) (*nats.Conn, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	shown := RedactURL(rawURL)
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS connection lost; reconnecting", "server", shown, "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("NATS connection back", "server", shown) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("NATS error", "server", shown, "err", err)
		}),
	}
	if o.Auth.Token != "" {
		opts = append(opts, nats.Token(o.Auth.Token))
	}
	if o.Auth.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.Auth.CredsFile))
	}
	if o.Server != nil {
		opts = append(opts, nats.InProcessServer(o.Server.s))
		rawURL, shown = o.Server.ClientURL(), "embedded"
	}
	deadline := time.Now().Add(o.Wait)
	for {
		nc, err := nats.Connect(rawURL, opts...)
		if err == nil {
			return nc, nil
		}
		auth := errors.Is(err, nats.ErrAuthorization) || strings.Contains(err.Error(), "Authorization")
		if auth || time.Now().After(deadline) {
			hint := ""
			if auth {
				hint = fmt.Sprintf(" (set %s or %s to the server's credentials)", TokenEnv, CredsEnv)
			}
			return nil, fmt.Errorf("connecting to NATS at %s: %w%s", shown, err, hint)
		}
		log.Info("NATS server not answering yet; retrying", "server", shown, "err", err)
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// RedactURL returns a NATS URL list with any user information replaced.
func RedactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			u.User = url.User("redacted")
			p = u.String()
		} else if err != nil && strings.Contains(p, "@") {
			p = "[redacted]@" + p[strings.LastIndex(p, "@")+1:]
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}
