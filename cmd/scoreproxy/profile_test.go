package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCPUProfileIsWrittenOnStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	stop, err := startCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("profile %s not written: %v", path, err)
	}
	if _, err := startCPUProfile(filepath.Join(t.TempDir(), "missing", "cpu.prof")); err == nil || !strings.Contains(err.Error(), "-cpuprofile") {
		t.Fatalf("unwritable path: err = %v, want one naming -cpuprofile", err)
	}
}
