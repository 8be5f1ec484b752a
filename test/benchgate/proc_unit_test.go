package benchgate

import (
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    procStat
		wantErr bool
	}{
		{
			name: "plain",
			line: "4242 (kube-apiserver) S 17 4242 17 0 -1 4194560 90817 0 0 0 1234 567 0 0 20 0 14 0 3456 1500000000 60000",
			want: procStat{comm: "kube-apiserver", ppid: 17, cpu: 1801 * 10 * time.Millisecond},
		},
		{
			name: "command with spaces and parentheses",
			line: "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 1 1",
			want: procStat{comm: "a (b) c", ppid: 1, cpu: 11 * 10 * time.Millisecond},
		},
		{name: "truncated", line: "7 (x) R 1 7 7", wantErr: true},
		{name: "no command", line: "7 x R 1", wantErr: true},
		{name: "bad utime", line: "7 (x) R 1 7 7 0 -1 0 0 0 0 0 five 6 0", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat(tc.line)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseProcStat error = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("parseProcStat = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseStatusMB(t *testing.T) {
	const status = "Name:\tkube-apiserver\nVmPeak:\t 2000000 kB\nVmHWM:\t  250000 kB\nVmRSS:\t  200000 kB\nThreads:\t14\n"
	tests := []struct {
		field   string
		want    float64
		wantErr bool
	}{
		{field: "VmHWM", want: 256},
		{field: "VmRSS", want: 204.8},
		{field: "VmSwap", wantErr: true},
		{field: "Threads", wantErr: true}, // no kB unit
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			got, err := parseStatusMB(status, tc.field)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseStatusMB error = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("parseStatusMB = %v MB, want %v", got, tc.want)
			}
		})
	}
}
