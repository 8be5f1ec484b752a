package benchproc

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name, line string
		want       Stat
		wantErr    string
	}{
		{
			name: "plain",
			line: "4242 (kube-apiserver) S 17 4242 17 0 -1 4194560 1 0 0 0 250 75 0 0 20 0 12 0 100 1 1",
			want: Stat{Comm: "kube-apiserver", PPid: 17, CPU: 3250 * time.Millisecond},
		},
		{
			name: "command with spaces and parentheses",
			line: "7 (a (b) c) R 1 7 1 0 -1 0 0 0 0 0 1 2 0 0 20 0",
			want: Stat{Comm: "a (b) c", PPid: 1, CPU: 30 * time.Millisecond},
		},
		{name: "no command", line: "7 S 1 7", wantErr: "no (comm)"},
		{name: "too few fields", line: "7 (x) S 1 7 1", wantErr: "want at least 13"},
		{name: "bad ppid", line: "7 (x) S one 7 1 0 -1 0 0 0 0 0 1 2", wantErr: "ppid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat(tt.line)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseStatusMB(t *testing.T) {
	status := "Name:\tetcd\nVmHWM:\t  204800 kB\nVmRSS:\t102400 kB\nBad:\t12 pages\n"
	tests := []struct {
		field   string
		want    float64
		wantErr string
	}{
		{field: "VmHWM", want: 204800 * 1024 / 1e6},
		{field: "VmRSS", want: 102400 * 1024 / 1e6},
		{field: "VmSwap", wantErr: "no VmSwap"},
		{field: "Bad", wantErr: "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			got, err := ParseStatusMB(status, tt.field)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestProcess runs real processes: a child is found by name, its usage read,
// and a process that failed says how and what it wrote.
func TestProcess(t *testing.T) {
	sleeper, err := Start("sleeper", nil, "/bin/sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	defer sleeper.Stop()
	if err := sleeper.Running(); err != nil {
		t.Fatalf("a sleeping process is not running: %v", err)
	}
	pid, err := ChildNamed(os.Getpid(), "sleep")
	if err != nil || pid != sleeper.Pid() {
		t.Fatalf("ChildNamed(sleep) = %d, %v; want %d", pid, err, sleeper.Pid())
	}
	u, err := UsageOf(pid)
	if err != nil || u.HWMMB <= 0 || u.RSSMB <= 0 || u.HWMMB < u.RSSMB {
		t.Fatalf("usage of a sleeping process: %+v, %v", u, err)
	}
	sleeper.Stop()
	if !sleeper.Exited() || sleeper.Running() == nil {
		t.Fatal("a stopped process still counts as running")
	}

	failing, err := Start("failing", nil, "/bin/sh", "-c", "echo first; for i in $(seq 40); do echo line $i >&2; done; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	<-failing.done
	d := failing.Running()
	if d == nil {
		t.Fatal("an exited process counts as running")
	}
	for _, want := range []string{"failing (pid", "exit status 3", "first", "line 40", "[... 11 lines ...]"} {
		if !strings.Contains(d.Error(), want) {
			t.Errorf("diagnosis %q lacks %q", d, want)
		}
	}
	if strings.Contains(d.Error(), "line 10\n") {
		t.Errorf("diagnosis %q holds a middle line", d)
	}
}
