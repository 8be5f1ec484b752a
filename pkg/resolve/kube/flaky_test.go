package kube_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// proxyAPIServer serves handle on plain HTTP in front of the real API server;
// handle passes a request on with the given proxy, or answers it itself.
func proxyAPIServer(t *testing.T, handle func(proxy http.Handler, w http.ResponseWriter, r *http.Request)) *rest.Config {
	t.Helper()
	return proxyAs(t, env.Config, handle)
}

// proxyAs is proxyAPIServer authenticating as cfg does (a ServiceAccount's token).
func proxyAs(t *testing.T, cfg *rest.Config, handle func(proxy http.Handler, w http.ResponseWriter, r *http.Request)) *rest.Config {
	t.Helper()
	target, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = transport
	proxy.FlushInterval = -1 // stream watch events at once
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handle(proxy, w, r) }))
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL}
}

// flakyAPIServer proxies to the real API server, failing the first lists with
// 500 and cutting every watch after a short while, as an overloaded or restarting
// API server or a load balancer does.
func flakyAPIServer(t *testing.T, failLists int32) (*rest.Config, *atomic.Int32, *atomic.Int32) {
	t.Helper()
	var lists, watches atomic.Int32
	cfg := proxyAPIServer(t, func(proxy http.Handler, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") == "true" {
			watches.Add(1)
			ctx, cancel := context.WithTimeout(r.Context(), 300*time.Millisecond)
			defer cancel()
			proxy.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		if n := lists.Add(1); n <= failLists {
			http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected failure","reason":"InternalError","code":500}`, http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	return cfg, &lists, &watches
}

func TestTransientErrorsAreRetriedNeverResolvedEarly(t *testing.T) {
	ns := env.Namespace(t)
	createService(t, ns, "galera", nil)
	createSlice(t, ns, "galera", "galera-a", endpoint{ip: "10.0.0.1", ready: ptr.To(false)})
	cfg, lists, watches := flakyAPIServer(t, 3)
	c, err := kube.NewClient(cfg, kube.Options{PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	w := start(t, &kube.Service{Client: c, Ref: spec.ObjectRef{Namespace: ns, Name: "galera"}})
	// The injected failures surface as the reason, then the real state does.
	w.blocked(t, "cannot list EndpointSlices: InternalError")
	w.blocked(t, "0 of 1 endpoints ready")
	// Watches are cut every 300ms; across several cuts it must keep waiting.
	deadline := time.Now().Add(settle)
	for watches.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d watches after %s", watches.Load(), settle)
		}
		w.stillBlocked(t)
	}
	createSlice(t, ns, "galera", "galera-b", endpoint{ip: "10.0.0.2", ready: ptr.To(true)})
	w.ready(t)
	if lists.Load() < 4 {
		t.Errorf("%d lists, want the 3 failures and at least one success", lists.Load())
	}
}

// silentPodWatches proxies to the real API server but holds every pod watch open
// without events: the pod watch lags behind everything else, as it may under load.
func silentPodWatches(t *testing.T) *rest.Config {
	t.Helper()
	return proxyAPIServer(t, func(proxy http.Handler, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") == "true" && strings.HasSuffix(r.URL.Path, "/pods") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		proxy.ServeHTTP(w, r)
	})
}

// The DaemonSet's status may count this node's pod before the pod watch delivers
// it. That must not read as "the DaemonSet does not target this node" (found by
// the end-to-end suite on a real kubelet).
func TestDaemonSetStatusAheadOfThePodWatch(t *testing.T) {
	ns := env.Namespace(t)
	ds := createDaemonSet(t, ns, "agent")
	c, err := kube.NewClient(silentPodWatches(t), kube.Options{Namespace: ns, NodeName: "node-a", PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	w := start(t, &kube.DaemonSet{Client: c, Ref: spec.ObjectRef{Namespace: ns, Name: "agent"}})
	w.blocked(t, "no pod on node node-a yet")
	// As the controller does it: the pod first, then the status that counts it.
	createPod(t, ns, "agent-a", podSpec{node: "node-a", labels: agentLabels, owner: ownedBy(ds)})
	setDaemonSetStatus(t, ns, "agent", 1, 1, true)
	w.blocked(t, "pod agent-a on node node-a not ready")
	w.stillBlocked(t)
	setPodStatus(t, ns, "agent-a", *runningPod(true))
	ds2, err := env.Client.AppsV1().DaemonSets(ns).Get(context.Background(), "agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ds2.Status.NumberReady = 1
	if _, err := env.Client.AppsV1().DaemonSets(ns).UpdateStatus(context.Background(), ds2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.ready(t)
}
