package benchproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture Go supports (sysconf(_SC_CLK_TCK) would need cgo).
const clockTick = 10 * time.Millisecond

// Stat is what a benchmark reads of /proc/<pid>/stat.
type Stat struct {
	Comm string
	PPid int
	CPU  time.Duration // utime + stime
}

// ParseStat reads one /proc/<pid>/stat line. The command name sits in
// parentheses and may itself hold spaces and parentheses, so the fields are
// counted from the last ')'.
func ParseStat(line string) (Stat, error) {
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return Stat{}, fmt.Errorf("no (comm) in %q", line)
	}
	f := strings.Fields(line[end+1:]) // state ppid pgrp ... utime stime: fields 3, 4, ..., 14, 15
	if len(f) < 13 {
		return Stat{}, fmt.Errorf("%d fields after (comm), want at least 13: %q", len(f), line)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("ppid %q: %w", f[1], err)
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Stat{}, fmt.Errorf("utime/stime %q: %w", v, err)
		}
		ticks += n
	}
	return Stat{Comm: line[open+1 : end], PPid: ppid, CPU: time.Duration(ticks) * clockTick}, nil
}

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(strings.TrimSpace(string(raw)))
}

// ParseStatusMB finds a memory field (VmRSS, VmHWM, ...) in the text of
// /proc/<pid>/status and returns it in MB.
func ParseStatusMB(status, field string) (float64, error) {
	for line := range strings.SplitSeq(status, "\n") {
		v, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(v) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected %q", line)
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", line, err)
		}
		return kb * 1024 / 1e6, nil
	}
	return 0, fmt.Errorf("no %s", field)
}

// Usage is a process's resource use so far.
type Usage struct {
	HWMMB float64 // peak resident memory (VmHWM)
	RSSMB float64 // resident memory now (VmRSS)
	CPU   time.Duration
}

// UsageOf reads the resource use of pid.
func UsageOf(pid int) (Usage, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	if u.HWMMB, err = ParseStatusMB(string(raw), "VmHWM"); err != nil {
		return u, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	if u.RSSMB, err = ParseStatusMB(string(raw), "VmRSS"); err != nil {
		return u, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	st, err := ReadStat(pid)
	if err != nil {
		return u, err
	}
	u.CPU = st.CPU
	return u, nil
}

// ChildNamed is the pid of the one child of parent whose command is name.
func ChildNamed(parent int, name string) (int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	var found []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		st, err := ReadStat(pid)
		if err != nil {
			continue // ended meanwhile
		}
		if st.PPid == parent && st.Comm == name {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%d children of process %d named %q, want 1: %v", len(found), parent, name, found)
	}
	return found[0], nil
}
