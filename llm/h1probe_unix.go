//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package llm

import (
	"net"
	"syscall"
)

// probeIdle peeks at an idle connection without blocking: it is usable
// when the peek would wait. Bytes the server sent unasked, an end of
// file or an error all mean it is not.
func probeIdle(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	usable := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		usable = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true // never wait
	})
	return err == nil && usable
}
