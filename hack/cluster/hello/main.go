// Command hello is the smoke-test workload of the local cluster. It prints its pod's
// addresses and service-account namespace, and with HELLO_WHOAMI=1 asks the API server
// (at $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, with the pod's service-account
// token) who it is, then sleeps until SIGTERM. HELLO_FILES (blank-separated paths) makes
// it print those files, HELLO_MOUNTS (blank-separated mount points) the options of
// those mounts: how the smoke test reads an image volume.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func main() {
	host, _ := os.Hostname()
	fmt.Printf("hello from %s\n", host)
	if addrs, err := net.InterfaceAddrs(); err == nil {
		var s []string
		for _, a := range addrs {
			s = append(s, a.String())
		}
		fmt.Printf("addresses: %s\n", strings.Join(s, " "))
	}
	if ns, err := os.ReadFile(saDir + "/namespace"); err == nil {
		fmt.Printf("service-account namespace: %s\n", ns)
	} else {
		fmt.Printf("no service-account volume: %v\n", err)
	}
	for _, f := range strings.Fields(os.Getenv("HELLO_FILES")) {
		if b, err := os.ReadFile(f); err != nil {
			fmt.Printf("file %s: %v\n", f, err)
		} else {
			fmt.Printf("file %s: %s\n", f, strings.TrimSpace(string(b)))
		}
	}
	for _, m := range strings.Fields(os.Getenv("HELLO_MOUNTS")) {
		fmt.Printf("mount %s: %s\n", m, mountOptions(m))
	}
	if os.Getenv("HELLO_WHOAMI") == "1" {
		if user, err := whoami(); err != nil {
			fmt.Printf("whoami failed: %v\n", err)
		} else {
			fmt.Printf("the API server knows me as %s\n", user)
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	s := <-sigs
	fmt.Printf("bye (%v)\n", s)
}

// whoami sends a SelfSubjectReview, which every authenticated user may create.
func whoami() (string, error) {
	token, err := os.ReadFile(saDir + "/token")
	if err != nil {
		return "", err
	}
	caPEM, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return "", err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")) +
		"/apis/authentication.k8s.io/v1/selfsubjectreviews"
	body := []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	var r struct {
		Status struct {
			UserInfo struct {
				Username string `json:"username"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", err
	}
	return r.Status.UserInfo.Username, nil
}

// mountOptions says whether the mount at dir (the topmost one) is read-only, with its
// per-mount options from /proc/self/mountinfo, or what went wrong.
func mountOptions(dir string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err.Error()
	}
	opts := ""
	for _, l := range strings.Split(string(b), "\n") {
		// ID parent major:minor root mount-point options ...
		if f := strings.Fields(l); len(f) > 5 && f[4] == dir {
			opts = f[5]
		}
	}
	switch {
	case opts == "":
		return "not a mount point"
	case slices.Contains(strings.Split(opts, ","), "ro"):
		return "read-only (" + opts + ")"
	}
	return "read-write (" + opts + ")"
}
