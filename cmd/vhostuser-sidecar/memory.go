package main

import (
	"os"
	"runtime/debug"
)

// memoryLimit is the Go runtime's soft memory limit. Every VM runs one
// sidecar, so its resident memory is paid per VM. With the default GOGC the
// heap grows to its 4 MiB minimum goal plus unreturned spans between calls
// (each OnDefineDomain allocates a few hundred KiB, the live heap stays under
// 1 MiB); the limit makes the GC and the scavenger keep the runtime's own
// memory near 8 MiB instead: about 3 MiB less peak RSS in make bench-sidecar.
// It is soft: a domain whose parse needs more only makes the GC run more
// often (the runtime caps that at half the CPU), it never fails a call.
const memoryLimit = 8 << 20

// setMemoryLimit applies memoryLimit unless the operator set GOMEMLIMIT.
func setMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}
