package main

import (
	"os"
	"runtime/debug"
)

// Every VM runs one sidecar, so its resident memory is paid per VM. Each
// OnDefineDomain allocates a few hundred KiB and the live heap stays under
// 1 MiB, yet with Go's defaults the heap sits at GOGC's 4 MiB minimum goal
// plus spans not yet returned (about 7 MiB anonymous after 1000 calls). GOGC
// 50 halves that goal; the soft limit makes the GC and the scavenger hold the
// runtime's memory near 10 MiB. In make bench-sidecar the peak RSS drops by
// about 2 MiB and a call takes as long as before; an 8 MiB limit saved 1 MiB
// more but doubled the call latency (a GC on almost every call). The limit is
// soft: a domain whose parse needs more only makes the GC run more often (the
// runtime caps that at half the CPU), it never fails a call.
const (
	gcPercent   = 50
	memoryLimit = 10 << 20
)

// tuneGC applies gcPercent and memoryLimit where the operator did not set
// GOGC or GOMEMLIMIT.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}
