package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ProcCPU is the CPU time a process has used, in clock ticks.
type ProcCPU struct {
	UserTicks, SystemTicks uint64
}

// Seconds converts the ticks to seconds with the kernel's clock tick rate.
func (c ProcCPU) Seconds() float64 {
	return float64(c.UserTicks+c.SystemTicks) / float64(clockTicks())
}

// Sub returns the CPU time used between o and c.
func (c ProcCPU) Sub(o ProcCPU) ProcCPU {
	return ProcCPU{UserTicks: c.UserTicks - o.UserTicks, SystemTicks: c.SystemTicks - o.SystemTicks}
}

// readProcCPU reads utime and stime of pid from /proc/PID/stat.
func readProcCPU(pid int) (ProcCPU, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcCPU{}, err
	}
	return parseProcStat(b)
}

// parseProcStat extracts utime and stime (fields 14 and 15 of proc(5)) from
// the contents of /proc/PID/stat. The command name (field 2) is in
// parentheses and may itself contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseProcStat(b []byte) (ProcCPU, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ProcCPU{}, fmt.Errorf("/proc stat: no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return ProcCPU{}, fmt.Errorf("/proc stat: %d fields after the command name, want at least 13", len(f))
	}
	u, errU := strconv.ParseUint(f[14-3], 10, 64)
	s, errS := strconv.ParseUint(f[15-3], 10, 64)
	if errU != nil || errS != nil {
		return ProcCPU{}, fmt.Errorf("/proc stat: utime %q stime %q: not numbers", f[14-3], f[15-3])
	}
	return ProcCPU{UserTicks: u, SystemTicks: s}, nil
}

// readPeakRSS returns VmHWM (peak resident set size) of pid in bytes.
func readPeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusKB(b, "VmHWM")
}

// parseStatusKB returns the value of a "Key:   N kB" line of /proc/PID/status in bytes.
func parseStatusKB(b []byte, key string) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, key+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc status: %s line %q: want \"N kB\"", key, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc status: %s: %w", key, err)
		}
		return n * 1024, nil
	}
	return 0, fmt.Errorf("/proc status: no %s line", key)
}

// atClkTck is the auxiliary vector key of the clock tick rate (AT_CLKTCK).
const atClkTck = 17

// clockTicks returns the kernel's clock ticks per second, the unit of
// utime/stime: sysconf(_SC_CLK_TCK), which the kernel hands every process in
// its auxiliary vector. Without cgo it is read from /proc/self/auxv; if that
// fails it is 100, the value on every Linux architecture Go supports.
var clockTicks = sync.OnceValue(func() int64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil || strconv.IntSize != 64 {
		return 100
	}
	if v := auxvValue(b, atClkTck); v > 0 {
		return int64(v)
	}
	return 100
})

// auxvValue returns the value of key in a 64-bit native-endian auxiliary
// vector, or 0 if absent.
func auxvValue(b []byte, key uint64) uint64 {
	for ; len(b) >= 16; b = b[16:] {
		k, v := binary.NativeEndian.Uint64(b), binary.NativeEndian.Uint64(b[8:])
		if k == key {
			return v
		}
		if k == 0 {
			break
		}
	}
	return 0
}
