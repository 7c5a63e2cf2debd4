//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package llm

import "net"

// probeIdle cannot peek without blocking here: a connection the server
// closed is found when the request fails before its reply, and the
// request goes out again on a new connection.
func probeIdle(net.Conn) bool { return true }
