//go:build !unix

package curate

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
