package kube_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// requestLog records the requests that pass a proxy, with their arrival times.
type requestLog struct {
	mu       sync.Mutex
	requests []loggedRequest
}

type loggedRequest struct {
	at                  time.Time
	method, path, query string
}

func (l *requestLog) add(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests = append(l.requests, loggedRequest{time.Now(), r.Method, r.URL.Path, r.URL.Query().Encode()})
}

// matching lists the requests whose path ends with suffix, of method, in order.
func (l *requestLog) matching(method, suffix string) []loggedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loggedRequest
	for _, r := range l.requests {
		if r.method == method && strings.HasSuffix(r.path, suffix) {
			out = append(out, r)
		}
	}
	return out
}

func (l *requestLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, r := range l.requests {
		b.WriteString(r.at.Format("15:04:05.000") + " " + r.method + " " + r.path + "?" + r.query + "\n")
	}
	return b.String()
}

// recordedClient is a resolver client authenticating as a ServiceAccount with
// rules, whose requests are recorded.
func recordedClient(t *testing.T, ns string, rules []rbacv1.PolicyRule, o kube.Options) (*kube.Client, *requestLog) {
	t.Helper()
	log := &requestLog{}
	cfg := proxyAs(t, env.ServiceAccountConfig(t, ns, "resolver", rules), func(proxy http.Handler, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") != "true" {
			log.add(r)
		}
		proxy.ServeHTTP(w, r)
	})
	c, err := kube.NewClient(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	return c, log
}

// helm-toolkit's rule for a pod that waits for services and jobs: get and list.
var getList = []rbacv1.PolicyRule{{APIGroups: []string{"", "batch", "apps", "discovery.k8s.io"}, Verbs: []string{"get", "list"},
	Resources: []string{"services", "endpoints", "endpointslices", "jobs", "pods", "daemonsets"}}}

// Where watch is forbidden, the services of one namespace are polled with one
// shared LIST (`kubernetes.io/service-name in (...)`), and each still resolves on
// its own EndpointSlices only.
func TestPollsOfOneNamespaceShareOneRequest(t *testing.T) {
	ns := env.Namespace(t)
	names := []string{"mariadb", "memcached", "rabbitmq"}
	var logs logSink
	c, requests := recordedClient(t, ns, getList, kube.Options{Log: logs.logger(), PollInterval: 100 * time.Millisecond})
	waits := map[string]*waiting{}
	for _, name := range names {
		createService(t, ns, name, nil)
		waits[name] = start(t, &kube.Service{Client: c, Ref: spec.ObjectRef{Namespace: ns, Name: name}})
	}
	for _, name := range names {
		waits[name].blocked(t, "no endpoints")
	}
	const all = "labelSelector=kubernetes.io%2Fservice-name+in+%28mariadb%2Cmemcached%2Crabbitmq%29"
	sharedLists := func(selector string) int {
		n := 0
		for _, r := range requests.matching(http.MethodGet, "/endpointslices") {
			if r.query == selector {
				n++
			}
		}
		return n
	}
	waitFor(t, "three shared polls", requests, func() bool { return sharedLists(all) >= 3 })
	// A slice of another service in the same namespace matches no one.
	createSlice(t, ns, "keystone", "keystone-a", endpoint{ip: "10.0.0.9", ready: ptr.To(true)})
	createSlice(t, ns, "memcached", "memcached-a", endpoint{ip: "10.0.0.1", ready: ptr.To(true)})
	waits["memcached"].ready(t)
	waits["mariadb"].stillBlocked(t)
	waits["rabbitmq"].blocked(t, "no endpoints")
	const rest = "labelSelector=kubernetes.io%2Fservice-name+in+%28mariadb%2Crabbitmq%29"
	waitFor(t, "a shared poll of the two left", requests, func() bool { return sharedLists(rest) >= 1 })

	// Once all three take part, every poll is the shared one. (A round may come
	// before the last of them joined; it lists those that did.)
	shared := false
	for _, r := range requests.matching(http.MethodGet, "/endpointslices") {
		switch {
		case r.query == all || r.query == rest:
			shared = true
		case shared:
			t.Errorf("a list of its own (%s) after the shared ones began; requests:\n%s", r.query, requests)
		}
	}
	createSlice(t, ns, "mariadb", "mariadb-a", endpoint{ip: "10.0.0.2", ready: ptr.To(true)})
	createSlice(t, ns, "rabbitmq", "rabbitmq-a", endpoint{ip: "10.0.0.3", ready: ptr.To(true)})
	waits["mariadb"].ready(t)
	waits["rabbitmq"].ready(t)
	if n := logs.count("watch not allowed; polling instead"); n != len(names) {
		t.Errorf("logged the polling fallback %d times, want once per service; logs: %v", n, logs.snapshot())
	}
}

// waitFor polls cond for up to settle, printing the requests on failure.
func waitFor(t *testing.T, what string, requests *requestLog, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s; requests:\n%s", what, settle, requests)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Where even list is forbidden for a named object (helm-toolkit grants only get on
// a custom resource a chart depends on), the object is read by name, and the log
// says so once.
func TestGetByNameWhereListIsForbidden(t *testing.T) {
	ns := env.Namespace(t)
	group := widgetGroup(ns)
	installWidgetCRD(t, group)
	for _, tc := range []struct {
		name         string
		rule         rbacv1.PolicyRule
		dep          func(c *kube.Client) resolve.Dependency
		create, make func(t *testing.T)
		notReady     string
		get          string // the path suffix of the GET by name
	}{
		{
			name: "custom resource",
			rule: rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{"widgets"}, Verbs: []string{"get"}},
			dep: func(c *kube.Client) resolve.Dependency {
				return &kube.CustomResource{Client: c, Ref: spec.CustomResourceRef{APIVersion: group + "/v1", Kind: "Widget",
					Namespace: ns, Name: "nova-cell0-db-conn", Conditions: []spec.ConditionMatch{{Type: "Ready", Status: "True"}}}}
			},
			create: func(t *testing.T) {
				createWidget(t, ns, group, "nova-cell0-db-conn", map[string]any{"status": readyCondition("False")})
			},
			make: func(t *testing.T) {
				updateWidget(t, ns, group, "nova-cell0-db-conn", map[string]any{"status": readyCondition("True")})
			},
			notReady: "condition Ready is not True",
			get:      "/widgets/nova-cell0-db-conn",
		},
		{
			name: "job",
			rule: rbacv1.PolicyRule{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get"}},
			dep: func(c *kube.Client) resolve.Dependency {
				return &kube.Job{Client: c, Ref: spec.JobRef{Namespace: ns, Name: "db-sync"}}
			},
			create: func(t *testing.T) {
				createJob(t, ns, "db-sync", nil, 1)
				setJobStatus(t, ns, "db-sync", jobRunning)
			},
			make:     func(t *testing.T) { setJobStatus(t, ns, "db-sync", jobComplete) },
			notReady: "1 active, 0 succeeded",
			get:      "/jobs/db-sync",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logSink
			sa := env.ServiceAccountConfig(t, ns, "get-only-"+strings.ReplaceAll(tc.name, " ", "-"), []rbacv1.PolicyRule{tc.rule})
			requests := &requestLog{}
			cfg := proxyAs(t, sa, func(proxy http.Handler, w http.ResponseWriter, r *http.Request) {
				requests.add(r)
				proxy.ServeHTTP(w, r)
			})
			c, err := kube.NewClient(cfg, kube.Options{Log: logs.logger(), PollInterval: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			w := start(t, tc.dep(c))
			w.blocked(t, "not found")
			tc.create(t)
			w.blocked(t, tc.notReady)
			tc.make(t)
			w.ready(t)
			if n := logs.count("list not allowed; reading it by name instead"); n != 1 {
				t.Errorf("the fallback to get was logged %d times, want once; logs: %v", n, logs.snapshot())
			}
			if n := len(requests.matching(http.MethodGet, tc.get)); n < 3 {
				t.Errorf("%d GETs of %s, want one per poll; requests:\n%s", n, tc.get, requests)
			}
		})
	}
}

// RBAC that names the objects (resourceNames) allows a list by name but not of the
// namespace: the group then reads each with its own request.
func TestSharedPollRefusedReadsEachOnItsOwn(t *testing.T) {
	ns := env.Namespace(t)
	var logs logSink
	c, _ := recordedClient(t, ns, []rbacv1.PolicyRule{{APIGroups: []string{"batch"}, Resources: []string{"jobs"},
		Verbs: []string{"get", "list"}, ResourceNames: []string{"db-init", "db-sync"}}},
		kube.Options{Log: logs.logger(), PollInterval: 100 * time.Millisecond})
	w1 := start(t, &kube.Job{Client: c, Ref: spec.JobRef{Namespace: ns, Name: "db-init"}})
	w2 := start(t, &kube.Job{Client: c, Ref: spec.JobRef{Namespace: ns, Name: "db-sync"}})
	w1.blocked(t, "not found")
	w2.blocked(t, "not found")
	createJob(t, ns, "db-init", nil, 1)
	setJobStatus(t, ns, "db-init", jobComplete)
	w1.ready(t)
	w2.stillBlocked(t)
	createJob(t, ns, "db-sync", nil, 1)
	setJobStatus(t, ns, "db-sync", jobComplete)
	w2.ready(t)
	if n := logs.count("a shared poll was refused"); n != 1 {
		t.Errorf("logged %d times, want once: %v", n, logs.snapshot())
	}
}

// While nothing changes the polls slow down from the interval to 1.5 times it.
// Only lower bounds of the gaps are asserted: a timer never fires early, however
// busy the machine.
func TestPollsSlowDownWhileNothingChanges(t *testing.T) {
	ns := env.Namespace(t)
	const interval = 200 * time.Millisecond
	c, requests := recordedClient(t, ns, getList, kube.Options{PollInterval: interval})
	createService(t, ns, "mariadb", nil)
	w := start(t, &kube.Service{Client: c, Ref: spec.ObjectRef{Namespace: ns, Name: "mariadb"}})
	w.blocked(t, "no endpoints")
	lists := func() []loggedRequest { return requests.matching(http.MethodGet, "/endpointslices") }
	waitFor(t, "eight polls", requests, func() bool { return len(lists()) >= 8 })
	got := lists()
	// The first list is the resolver's own; the group's rounds follow. From the
	// fourth round on the interval has reached its cap.
	for i := 4; i < len(got); i++ {
		if gap := got[i].at.Sub(got[i-1].at); gap < interval*3/2-20*time.Millisecond {
			t.Errorf("poll %d came %s after the one before, want at least %s once nothing changes; requests:\n%s", i, gap, interval*3/2, requests)
		}
	}
	createSlice(t, ns, "mariadb", "mariadb-a", endpoint{ip: "10.0.0.1", ready: ptr.To(true)})
	w.ready(t)
}
