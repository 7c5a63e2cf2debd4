//go:build !unix

package pipeline

import "time"

// filterCPUTime is not measured here.
func filterCPUTime() time.Duration { return 0 }
