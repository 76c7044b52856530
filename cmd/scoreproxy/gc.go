package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the garbage collector's target when GOGC is not set.
// The proxy's live heap is small (a few MB of pooled request buffers, most
// of them without pointers, which the collector does not scan) and churns
// fast, so the Go default of 100 lets the heap double between collections
// for nothing: on the bench workload 30 gives 1-2 MB less peak RSS than 50
// for the same samples per CPU-second in pass-through, split and import.
// GOGC in the environment still wins.
const defaultGCPercent = 30

func init() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}
