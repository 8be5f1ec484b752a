// Package kube holds the dependencies that are resolved by asking the Kubernetes API:
// services, jobs, daemonsets, containers of the own pod, pods by label, objects
// of any kind, workload rollouts, claims, ConfigMaps, Secrets (read by name only)
// and CRDs. Each one lists and then watches exactly the objects it needs (scoped
// by field or label selector), falls back to polling where RBAC forbids watch (the
// polls of one kind and namespace sharing one request), and to a GET by name where
// it forbids list of a named object.
//
// It works on unstructured objects through the dynamic client on purpose: the typed
// clientset and discovery's OpenAPI models would more than double the size of a
// binary that is copied into every pod.
package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// DefaultPollInterval is how often a source is polled when watch is forbidden (up
// to 1.5 times as long while nothing changes, see poll.go). It is the original
// kubernetes-entrypoint's fixed interval.
const DefaultPollInterval = 2 * time.Second

// Options configure a Client.
type Options struct {
	Log logr.Logger
	// PollInterval is used when watch is forbidden; DefaultPollInterval when zero.
	PollInterval time.Duration
	// WaitForFailedJobs keeps waiting on a failed Job, in case it is re-run; by
	// default a failed Job is a terminal error.
	WaitForFailedJobs bool
	// Namespace and PodName identify the own pod (container dependencies, events,
	// node name lookup).
	Namespace string
	PodName   string
	// NodeName is this pod's node when known up front (NODE_NAME); otherwise it is
	// read from the own pod on first use.
	NodeName string
	// ReadyEventBudget bounds how long the DependenciesReady event may hold up the
	// application; DefaultReadyEventBudget when zero.
	ReadyEventBudget time.Duration
	// SliceRecheckInterval is how often a Service that fell back to its Endpoints
	// object looks whether EndpointSlices became readable; DefaultSliceRecheckInterval
	// when zero.
	SliceRecheckInterval time.Duration
}

// Client is what every Kubernetes dependency of one resolver run shares.
type Client struct {
	dynamic dynamic.Interface
	rest    rest.Interface // discovery GETs of /api/v1 and /apis/<group>/<version>
	opts    Options

	nodeMu   sync.Mutex
	nodeName string

	fallbackLogged sync.Map // what fell back to polling, logged once each

	pollMu sync.Mutex
	polls  map[pollKey]*pollGroup // where watch is forbidden: poll.go
}

// NewClient builds a Client for cfg. It does not contact the API server.
func NewClient(cfg *rest.Config, opts Options) (*Client, error) {
	if opts.SliceRecheckInterval <= 0 {
		opts.SliceRecheckInterval = DefaultSliceRecheckInterval
	}
	if opts.ReadyEventBudget <= 0 {
		opts.ReadyEventBudget = DefaultReadyEventBudget
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the HTTP client for the API server: %w", err)
	}
	dyn, err := dynamic.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("building the dynamic client: %w", err)
	}
	rc, err := rest.UnversionedRESTClientForConfigAndClient(dynamic.ConfigFor(cfg), httpClient)
	if err != nil {
		return nil, fmt.Errorf("building the discovery client: %w", err)
	}
	return &Client{dynamic: dyn, rest: rc, opts: opts, nodeName: opts.NodeName}, nil
}

var (
	podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// NodeName returns the node this pod runs on: NODE_NAME when set, else the own
// pod's spec.nodeName, read once and remembered.
func (c *Client) NodeName(ctx context.Context) (string, error) {
	c.nodeMu.Lock()
	defer c.nodeMu.Unlock()
	if c.nodeName != "" {
		return c.nodeName, nil
	}
	if c.opts.PodName == "" {
		return "", fmt.Errorf("the node name is unknown: set NODE_NAME, or POD_NAME so it can be read from the pod")
	}
	pod, err := c.dynamic.Resource(podsResource).Namespace(c.opts.Namespace).Get(ctx, c.opts.PodName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading own pod %s/%s to learn the node name (or set NODE_NAME): %w", c.opts.Namespace, c.opts.PodName, err)
	}
	node, _, _ := unstructuredString(pod.Object, "spec", "nodeName")
	if node == "" {
		return "", fmt.Errorf("own pod %s/%s has no spec.nodeName yet", c.opts.Namespace, c.opts.PodName)
	}
	c.nodeName = node
	return node, nil
}

// resourceFor maps apiVersion and kind to the resource to ask for, through the API
// server's discovery document of that group version.
func (c *Client) resourceFor(ctx context.Context, apiVersion, kind string) (schema.GroupVersionResource, bool, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return schema.GroupVersionResource{}, false, fmt.Errorf("apiVersion %q: %w", apiVersion, err)
	}
	path := "/apis/" + gv.Group + "/" + gv.Version
	if gv.Group == "" {
		path = "/api/" + gv.Version
	}
	raw, err := c.rest.Get().AbsPath(path).Do(ctx).Raw()
	if err != nil {
		if apierrors.IsNotFound(err) {
			return schema.GroupVersionResource{}, false, fmt.Errorf("the API server does not serve %s (is the CRD installed?)", apiVersion)
		}
		return schema.GroupVersionResource{}, false, fmt.Errorf("discovering %s: %w", apiVersion, err)
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(raw, &list); err != nil {
		return schema.GroupVersionResource{}, false, fmt.Errorf("decoding the discovery document of %s: %w", apiVersion, err)
	}
	for _, r := range list.APIResources {
		if r.Kind == kind && !strings.Contains(r.Name, "/") { // "/" marks a subresource
			return gv.WithResource(r.Name), r.Namespaced, nil
		}
	}
	return schema.GroupVersionResource{}, false, fmt.Errorf("%s does not serve kind %s", apiVersion, kind)
}

// logOnce logs msg the first time key is seen.
func (c *Client) logOnce(key, msg string, kv ...any) {
	if _, seen := c.fallbackLogged.LoadOrStore(key, true); !seen {
		c.opts.Log.Info(msg, kv...)
	}
}
