package jetstream

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrInsecureListen is returned by StartServer for a server that would
// listen beyond the loopback interface without authentication.
var ErrInsecureListen = errors.New("refusing to serve NATS beyond loopback without authentication")

// ServerConfig configures an embedded JetStream server.
type ServerConfig struct {
	// Host is the interface to listen on: "127.0.0.1" (loopback only) or
	// an address other machines reach. "" means 127.0.0.1.
	Host string
	// Port is the client port; 0 means 4222, -1 a free port.
	Port int
	// StoreDir holds JetStream's file store (streams, buckets, consumer
	// state): a server restarted on the same directory keeps them.
	StoreDir string
	// Token, when set, is required from every client. A Host beyond
	// loopback requires it.
	Token string
	// Name is the server's name; "" means "ensinstruct".
	Name string
}

// Server is an embedded NATS server with JetStream. The zero value is not
// usable: build one with StartServer. Its methods are safe for concurrent
// use.
type Server struct {
	s *server.Server
}

// ParseListen splits a --nats-listen address, HOST:PORT or :PORT, into a
// ServerConfig's Host and Port.
func ParseListen(addr string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("listen address %q: want HOST:PORT", addr)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("listen address %q: bad port %q", addr, p)
	}
	if h == "" {
		h = "0.0.0.0"
	}
	return h, port, nil
}

// loopback reports whether host only listens on the loopback interface.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckListen returns an error wrapping ErrInsecureListen when a server
// on host would be reachable from other machines without a token.
func CheckListen(host, token string) error {
	if host != "" && !loopback(host) && token == "" {
		return fmt.Errorf("%w: %s is reachable from other machines; export %s with a secret token (workers need the same), or listen on 127.0.0.1",
			ErrInsecureListen, host, TokenEnv)
	}
	return nil
}

// StartServer starts an embedded server and waits until it accepts
// connections. It refuses (ErrInsecureListen) to listen beyond loopback
// without a token.
func StartServer(cfg ServerConfig) (*Server, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if err := CheckListen(cfg.Host, cfg.Token); err != nil {
		return nil, err
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded NATS server: no store directory")
	}
	if cfg.Name == "" {
		cfg.Name = "ensinstruct"
	}
	opts := &server.Options{
		ServerName:    cfg.Name,
		Host:          cfg.Host,
		Port:          cfg.Port,
		JetStream:     true,
		StoreDir:      cfg.StoreDir,
		Authorization: cfg.Token,
		NoSigs:        true,
		NoLog:         true,
	}
	if cfg.Port == 0 {
		opts.Port = server.DEFAULT_PORT
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS server on %s: not ready after 10s (is the port in use?)", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	}
	return &Server{s: s}, nil
}

// ClientURL is the nats:// URL clients on this machine connect to.
func (s *Server) ClientURL() string { return s.s.ClientURL() }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.s.Addr() }

// Shutdown stops the server and waits until it has stopped.
func (s *Server) Shutdown() {
	s.s.Shutdown()
	s.s.WaitForShutdown()
}
