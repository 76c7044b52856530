package main

import (
	"encoding/binary"
	"os"
	"runtime"
	"testing"
)

// The test process's own /proc entries parse, and its CPU time does not
// go backwards across some work.
func TestProcOfSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	pid := os.Getpid()
	before, err := readProcCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := 0; i < 20_000_000; i++ {
		x += i % 7
	}
	after, err := readProcCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after.UserTicks+after.SystemTicks < before.UserTicks+before.SystemTicks || x < 0 {
		t.Fatalf("CPU went backwards: %+v then %+v", before, after)
	}
	rss, err := readPeakRSS(pid)
	if err != nil || rss < 1<<20 {
		t.Fatalf("peak RSS %d, %v", rss, err)
	}
	if got := clockTicks(); got != 100 {
		t.Errorf("clock ticks %d, want 100 (Linux USER_HZ)", got)
	}
}

// Fields are counted from the last ')', so a command name with spaces and
// parentheses does not shift them.
func TestParseProcStat(t *testing.T) {
	line := "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 8 0 99 1000 200\n"
	got, err := parseProcStat([]byte(line))
	if err != nil || got.UserTicks != 1234 || got.SystemTicks != 567 {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := parseProcStat([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("short line accepted")
	}
	if s := (ProcCPU{UserTicks: 150, SystemTicks: 50}).Seconds(); s != 200/float64(clockTicks()) {
		t.Fatalf("seconds %v", s)
	}
}

// VmHWM is read in kB and returned in bytes.
func TestParseStatusKB(t *testing.T) {
	status := "Name:\tvmagent\nVmPeak:\t  900 kB\nVmHWM:\t  143360 kB\nVmRSS:\t 100 kB\n"
	if got, err := parseStatusKB([]byte(status), "VmHWM"); err != nil || got != 143360*1024 {
		t.Fatalf("got %d, %v", got, err)
	}
	if _, err := parseStatusKB([]byte("Name: x\n"), "VmHWM"); err == nil {
		t.Fatal("missing key accepted")
	}
}

// auxvValue finds a key in an auxiliary vector and stops at AT_NULL.
func TestAuxvValue(t *testing.T) {
	var b []byte
	for _, kv := range [][2]uint64{{6, 4096}, {atClkTck, 250}, {0, 0}, {atClkTck, 1}} {
		b = binary.NativeEndian.AppendUint64(b, kv[0])
		b = binary.NativeEndian.AppendUint64(b, kv[1])
	}
	if got := auxvValue(b, atClkTck); got != 250 {
		t.Fatalf("got %d", got)
	}
	if got := auxvValue(b, 99); got != 0 {
		t.Fatalf("absent key: got %d", got)
	}
}
