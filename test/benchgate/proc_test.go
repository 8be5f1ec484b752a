package benchgate

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

// procStat is what the benchmark reads of /proc/<pid>/stat.
type procStat struct {
	comm string
	ppid int
	cpu  time.Duration // utime + stime
}

// parseProcStat reads one /proc/<pid>/stat line. The command name sits in
// parentheses and may itself hold spaces and parentheses, so the fields are
// counted from the last ')'.
func parseProcStat(line string) (procStat, error) {
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("no (comm) in %q", line)
	}
	f := strings.Fields(line[end+1:]) // state ppid pgrp ... utime stime ...: fields 3, 4, ..., 14, 15
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("%d fields after (comm), want at least 13: %q", len(f), line)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("ppid %q: %w", f[1], err)
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("utime/stime %q: %w", v, err)
		}
		ticks += n
	}
	return procStat{comm: line[open+1 : end], ppid: ppid, cpu: time.Duration(ticks) * clockTick}, nil
}

func readProcStat(pid int) (procStat, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(strings.TrimSpace(string(raw)))
}

// parseStatusMB finds a memory field (VmRSS, VmHWM, ...) in the text of
// /proc/<pid>/status and returns it in MB.
func parseStatusMB(status, field string) (float64, error) {
	for _, line := range strings.Split(status, "\n") {
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

func statusMB(pid int, field string) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	mb, err := parseStatusMB(string(raw), field)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return mb, nil
}

// childNamed is the pid of the one child of parent whose command is name.
func childNamed(parent int, name string) (int, error) {
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
		st, err := readProcStat(pid)
		if err != nil {
			continue // ended meanwhile
		}
		if st.ppid == parent && st.comm == name {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%d children of process %d named %q, want 1: %v", len(found), parent, name, found)
	}
	return found[0], nil
}
