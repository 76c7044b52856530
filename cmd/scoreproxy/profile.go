package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startCPUProfile writes a CPU profile of the whole run to path (the
// -cpuprofile flag), for `go tool pprof`. The returned function stops the
// profile and closes the file; it runs when the proxy shuts down (SIGTERM),
// so a profile of a bench run covers exactly that run.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// heapProfile writes a heap profile to path (the -memprofile flag) when the
// proxy shuts down: what the run left in use and, in alloc_space, all it
// allocated, for `go tool pprof -sample_index=...`.
func heapProfile(path string) (write func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-memprofile: %w", err)
	}
	return func() {
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			fmt.Fprintln(os.Stderr, "scoreproxy: -memprofile:", err)
		}
	}, nil
}
