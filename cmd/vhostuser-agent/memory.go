package main

import (
	"os"
	"runtime/debug"
)

// The agent runs on every node, so its resident memory is paid per node.
// Its live heap is a few MiB (the OVSDB cache, the trimmed pod and VMI
// caches), but a scrape of a few hundred ports makes short-lived garbage, and
// with GOGC's default the heap grows to twice the live heap before a
// collection. GOGC 50 keeps that headroom at half; the agent does little
// else, so the extra collections cost little CPU.
const gcPercent = 50

// tuneGC applies gcPercent where the operator did not set GOGC.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}
