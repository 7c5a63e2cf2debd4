//go:build unix

package curate

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user + system) the process has used
// so far, so that benchmarks on a shared machine can report it next to
// the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
