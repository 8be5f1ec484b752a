package hostile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// Environment of a child process: which case, the AdmissionReview to send, and
// the huge-config registry.
const (
	envChildCase = "HOSTILE_CHILD_CASE"
	envReview    = "HOSTILE_REVIEW"
	envRegistry  = "HOSTILE_REGISTRY"
	// idleCase builds the handler stack and sends nothing: the baseline RSS.
	idleCase     = "idle"
	resultPrefix = "HOSTILE-RESULT "
)

// childResult is what a child reports on stdout.
type childResult struct {
	Seconds       float64 `json:"seconds"`
	ResponseBytes int     `json:"responseBytes"`
	Allowed       bool    `json:"allowed"`
	Message       string  `json:"message"` // its start
	// PeakKiB is the process's peak RSS, VmHWM of /proc/self/status.
	PeakKiB int64 `json:"peakKiB"`
}

// peakRSS reads the calling process's peak RSS in KiB. It is not the Maxrss of
// the child's rusage: Go starts children with vfork, and Linux then carries the
// parent's peak into the child's Maxrss at exec, so that every child would report
// at least the benchmark's own peak. VmHWM is the peak of the child's own memory.
func peakRSS() (int64, error) { return peakRSSOf("/proc/self/status") }

// peakRSSOf reads the peak RSS in KiB, VmHWM, from a process's status file.
func peakRSSOf(statusFile string) (int64, error) {
	status, err := os.ReadFile(statusFile)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in %s", statusFile)
}

// TestHostileChild is the child process of BenchmarkHostile; it does nothing in a
// normal run.
func TestHostileChild(t *testing.T) {
	name := os.Getenv(envChildCase)
	if name == "" {
		t.Skip("run by BenchmarkHostile as a child process")
	}
	if addr := os.Getenv(envServeAddr); addr != "" {
		serveUntilStdinCloses(t, addr, os.Getenv(envCertDir))
		return
	}
	wh := newWebhook(os.Getenv(envRegistry))
	var res childResult
	if name != idleCase {
		body, err := os.ReadFile(os.Getenv(envReview))
		if err != nil {
			t.Fatal(err)
		}
		resp, took := serve(wh, body)
		res.Seconds, res.ResponseBytes = took.Seconds(), len(resp)
		var ar admissionv1.AdmissionReview
		if err := json.Unmarshal(resp, &ar); err != nil || ar.Response == nil {
			t.Fatalf("response %.500s: %v", resp, err)
		}
		res.Allowed = ar.Response.Allowed
		if ar.Response.Result != nil {
			res.Message = ar.Response.Result.Message
			if len(res.Message) > 100 {
				res.Message = res.Message[:100] + "..."
			}
		}
	}
	peak, err := peakRSS()
	if err != nil {
		t.Fatal(err)
	}
	res.PeakKiB = peak
	line, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(resultPrefix + string(line))
}

// runChild runs one case in a fresh process and returns its result.
func runChild(b *testing.B, name, reviewFile, registry string) childResult {
	b.Helper()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^TestHostileChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChildCase+"="+name, envReview+"="+reviewFile, envRegistry+"="+registry)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("child for %q: %v\nstdout: %s\nstderr: %s", name, err, stdout.String(), stderr.String())
	}
	var res childResult
	found := false
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), resultPrefix); ok {
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				b.Fatalf("child for %q: %v in %q", name, err, line)
			}
			found = true
		}
	}
	if !found {
		b.Fatalf("child for %q reported nothing\nstdout: %s\nstderr: %s", name, stdout.String(), stderr.String())
	}
	return res
}

// BenchmarkHostile: each hostile request in a fresh process through the real
// handler stack, with its time, its response's size and the process's peak RSS
// (also over that of an idle process with the same stack; see peakRSS). Run it with
// -benchtime 1x: the figures are those of one request.
func BenchmarkHostile(b *testing.B) {
	registry := startHugeRegistry(b)
	dir := b.TempDir()
	idleKiB := runChild(b, idleCase, "", registry).PeakKiB
	var table strings.Builder
	fmt.Fprintf(&table, "%-42s %10s %14s %14s %14s  %s\n", "case", "time", "response B", "peak RSS MiB", "over idle MiB", "answer")
	fmt.Fprintf(&table, "%-42s %10s %14s %14.1f %14s\n", "idle process (baseline)", "-", "-", float64(idleKiB)/1024, "-")
	for _, c := range cases() {
		file := filepath.Join(dir, strings.NewReplacer(" ", "-", ",", "", ":", "").Replace(c.name)+".json")
		if err := os.WriteFile(file, review(b, c, registry), 0o600); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			var res childResult
			for b.Loop() {
				res = runChild(b, c.name, file, registry)
			}
			peakKiB := res.PeakKiB
			b.ReportMetric(res.Seconds*1e3, "ms/req")
			b.ReportMetric(float64(res.ResponseBytes), "resp-B")
			b.ReportMetric(float64(peakKiB)/1024, "peak-RSS-MiB")
			b.ReportMetric(float64(peakKiB-idleKiB)/1024, "over-idle-MiB")
			answer := "allowed"
			if !res.Allowed {
				answer = "denied: " + res.Message
			}
			fmt.Fprintf(&table, "%-42s %10s %14d %14.1f %14.1f  %.100s\n", c.name,
				time.Duration(res.Seconds*float64(time.Second)).Round(100*time.Microsecond), res.ResponseBytes,
				float64(peakKiB)/1024, float64(peakKiB-idleKiB)/1024, answer)
		})
	}
	// On stdout: a benchmark's log is not shown once it has sub-benchmarks.
	fmt.Print(table.String())
}
