package hostile

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook"
)

// Environment of a child that serves the webhook over TLS until its stdin closes.
const (
	envServeAddr = "HOSTILE_SERVE_ADDR"
	envCertDir   = "HOSTILE_CERT_DIR"
)

// serveUntilStdinCloses is the serving child: the webhook's handler stack on addr
// with the certificate envtest made, until the parent closes stdin; then it
// reports its peak RSS.
func serveUntilStdinCloses(t *testing.T, addr, certDir string) {
	mux := http.NewServeMux()
	mux.Handle(webhook.Path, newWebhook(""))
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, 1)
	go func() {
		errs <- srv.ListenAndServeTLS(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
	}()
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case err := <-errs:
		t.Fatalf("serving the webhook on %s: %v", addr, err)
	case <-stdinClosed:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	peak, err := peakRSS()
	if err != nil {
		t.Fatal(err)
	}
	line, err := json.Marshal(childResult{PeakKiB: peak})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(resultPrefix + string(line))
}

// servingChild is a running serving child.
type servingChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout bytes.Buffer
	stderr bytes.Buffer
}

func startServingChild(b *testing.B, addr, certDir string) *servingChild {
	b.Helper()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	c := &servingChild{cmd: exec.Command(self, "-test.run=^TestHostileChild$", "-test.count=1")}
	c.cmd.Env = append(os.Environ(), envChildCase+"=serve", envServeAddr+"="+addr, envCertDir+"="+certDir)
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	testenv.Eventually(b, time.Minute, "the webhook child to listen on "+addr, func() bool {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only: is it listening
		if err == nil {
			_ = conn.Close()
		}
		return err == nil
	})
	return c
}

// stop ends the child and returns its peak RSS in KiB.
func (c *servingChild) stop(b *testing.B) int64 {
	b.Helper()
	_ = c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		b.Fatalf("webhook child: %v\nstdout: %s\nstderr: %s", err, c.stdout.String(), c.stderr.String())
	}
	sc := bufio.NewScanner(&c.stdout)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), resultPrefix); ok {
			var res childResult
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				b.Fatal(err)
			}
			return res.PeakKiB
		}
	}
	b.Fatalf("webhook child reported nothing\nstdout: %s\nstderr: %s", c.stdout.String(), c.stderr.String())
	return 0
}

// BenchmarkHostileThroughAPIServer creates each hostile pod through a real API
// server (envtest) with the webhook registered as config/webhook does, the webhook
// in a fresh child process per case: the time of the create, the size of the
// answer the client gets, and the webhook process's peak RSS. It needs
// KUBEBUILDER_ASSETS (make bench-hostile sets it).
func BenchmarkHostileThroughAPIServer(b *testing.B) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		b.Skip("KUBEBUILDER_ASSETS is not set (make bench-hostile sets it)")
	}
	env, err := testenv.Start(envtest.Environment{
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{"../../config/webhook"}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	wio := env.WebhookInstallOptions()
	addr := net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort))
	ns := env.Namespace(b)
	ctx := context.Background()
	// The pod with fields of a newer API server gets a warning per field; they are expected.
	quiet := rest.CopyConfig(env.Config)
	quiet.WarningHandler = rest.NoWarnings{}
	client, err := kubernetes.NewForConfig(quiet)
	if err != nil {
		b.Fatal(err)
	}
	create := func(obj map[string]any) (time.Duration, error) {
		raw, err := json.Marshal(obj)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		err = client.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Body(raw).Do(ctx).Error()
		return time.Since(start), err
	}
	normal, err := caseNamed("normal pod")
	if err != nil {
		b.Fatal(err)
	}

	var table strings.Builder
	fmt.Fprintf(&table, "through the API server                       time     answer B   webhook peak RSS MiB  answer\n")
	for _, c := range cases() {
		if c.registry {
			continue // the registry lookup's cost is the same as without the API server
		}
		b.Run(c.name, func(b *testing.B) {
			var took time.Duration
			var answer error
			var peakKiB int64
			for b.Loop() {
				child := startServingChild(b, addr, wio.LocalServingCertDir)
				// The API server calls the webhook once it can connect again.
				testenv.Eventually(b, time.Minute, "the API server to reach the webhook", func() bool {
					_, err := create(normal.pod(""))
					return err == nil
				})
				obj := c.pod("")
				if c.podNamespace != "" {
					obj["metadata"].(map[string]any)["namespace"] = c.podNamespace
				}
				took, answer = create(obj)
				peakKiB = child.stop(b)
			}
			if (answer == nil) != c.allowed {
				b.Errorf("created %v, want %v: %v", answer == nil, c.allowed, answer)
			}
			msg := "created"
			if answer != nil {
				msg = answer.Error()
			}
			b.ReportMetric(float64(took.Microseconds())/1e3, "ms/create")
			b.ReportMetric(float64(len(msg)), "answer-B")
			b.ReportMetric(float64(peakKiB)/1024, "webhook-peak-RSS-MiB")
			fmt.Fprintf(&table, "%-42s %10s %12d %21.1f  %.90s\n", c.name, took.Round(100*time.Microsecond), len(msg), float64(peakKiB)/1024, msg)
		})
	}
	fmt.Print(table.String())
}
