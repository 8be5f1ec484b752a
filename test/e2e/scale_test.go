//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
)

// BenchmarkReleaseWaitingResolvers runs SCALE_PODS (default 300) pods of one annotated
// Deployment on the node, each with a real resolver waiting for the Service "db", then
// makes that Service ready (one EndpointSlice with a ready endpoint) and measures:
//
//   - from that moment to each application's start (the app prints its own clock):
//     p50, p99 and max;
//   - the waiting resolvers' total resident memory (VmRSS of every resolver process),
//     the anonymous part of it (RssAnon: what cannot be dropped and read back from
//     the binary's file), and their proportional share (Pss), which counts shared
//     pages once;
//   - the API server's own request counters (its /metrics) for reads (GET, LIST,
//     WATCH) of Services, EndpointSlices and Endpoints while they all wait, per
//     resolver per minute, what they cost to start, and the watches held open;
//   - how long each pod took from its creation (as this benchmark's watch saw it) to
//     its resolver's first line, and the node's memory in use (MemTotal less
//     MemAvailable) while they wait, less what it was before.
//
// "watch" gives the resolvers the chart's ClusterRole, injected with the init
// container that copies the resolver into each pod's emptyDir; "image-volume" is the
// same, injected as an image volume (annotation entrypoint.io/injection-mode), so
// that every pod runs the one copy of the node's image; "poll" the chart's rules
// without the watch verb, so that they fall back to listing every 2 s (the original
// image's behaviour); "watch-no-events" the chart's rules without create on events,
// to show what recording Events costs at release. SCALE_MODES (comma-separated)
// picks some of them. Run: make bench-scale.
func BenchmarkReleaseWaitingResolvers(b *testing.B) {
	defer noPanic(b)
	n := 300
	if v := os.Getenv("SCALE_PODS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("SCALE_PODS=%q: want a positive number", v)
		}
	}
	window := time.Minute
	if v := os.Getenv("SCALE_WINDOW"); v != "" {
		var err error
		if window, err = time.ParseDuration(v); err != nil {
			b.Fatalf("SCALE_WINDOW=%q: %v", v, err)
		}
	}
	modes := []string{"watch", "image-volume", "watch-no-events", "poll"}
	if v := os.Getenv("SCALE_MODES"); v != "" {
		modes = strings.Split(v, ",")
	}
	for _, mode := range modes {
		if !slices.Contains([]string{"watch", "image-volume", "watch-no-events", "poll"}, mode) {
			b.Fatalf("SCALE_MODES: unknown mode %q (watch, image-volume, watch-no-events, poll)", mode)
		}
		b.Run(mode, func(b *testing.B) {
			defer noPanic(b)
			for range b.N {
				r := releaseWaiting(b, mode, n, window)
				b.ReportMetric(r.p50.Seconds()*1000, "p50-ms")
				b.ReportMetric(r.p99.Seconds()*1000, "p99-ms")
				b.ReportMetric(r.max.Seconds()*1000, "max-ms")
				b.ReportMetric(float64(r.memory.rss)/(1<<20), "rss-total-MiB")
				b.ReportMetric(float64(r.memory.pss)/(1<<20), "pss-total-MiB")
				b.ReportMetric(float64(r.memory.anon)/(1<<20), "anon-total-MiB")
				b.ReportMetric(r.perResolverPerMinute, "req/resolver/min")
				b.ReportMetric(r.startupPerResolver, "startup-req/resolver")
				b.ReportMetric(r.openWatches/float64(n), "open-watches/resolver")
				b.ReportMetric(r.startP50.Seconds()*1000, "pod-start-p50-ms")
				b.ReportMetric(r.startP99.Seconds()*1000, "pod-start-p99-ms")
				b.ReportMetric(float64(r.nodeMemory)/(1<<20), "node-mem-MiB")
				m := r.memory
				b.Logf("%s: created -> resolver running: p50 %s p99 %s max %s; all %d running %s after the Deployment was created; node memory in use +%.0f MiB while they wait",
					mode, r.startP50.Round(time.Millisecond), r.startP99.Round(time.Millisecond), r.startMax.Round(time.Millisecond),
					n, r.allRunning.Round(time.Second), float64(r.nodeMemory)/(1<<20))
				b.Logf("%s: %d resolvers (%d processes; RSS %.1f MiB in all, %.1f MiB each, of which anonymous %.1f MiB in all, %.1f MiB each; Pss %.1f MiB in all, %.1f MiB each); while waiting %.0f s: %v (%.2f per resolver per minute), %.0f more watches open; to start: %v (%.2f per resolver); ready (EndpointSlice create returned, it took %s) -> app start p50 %s p99 %s max %s",
					mode, n, m.processes, float64(m.rss)/(1<<20), m.perProcessMiB(m.rss),
					float64(m.anon)/(1<<20), m.perProcessMiB(m.anon), float64(m.pss)/(1<<20), m.perProcessMiB(m.pss),
					r.window.Seconds(), r.waitingRequests, r.perResolverPerMinute, r.openWatches, r.startupRequests, r.startupPerResolver,
					r.createTook.Round(time.Millisecond), r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.max.Round(time.Millisecond))
			}
		})
	}
}

type scaleResult struct {
	p50, p99, max, createTook                time.Duration
	startP50, startP99, startMax, allRunning time.Duration
	nodeMemory                               int64
	openWatches                              float64
	memory                                   memoryUse
	window                                   time.Duration
	waitingRequests, startupRequests         map[string]float64
	perResolverPerMinute, startupPerResolver float64
}

func releaseWaiting(b *testing.B, mode string, n int, window time.Duration) scaleResult {
	ctx := context.Background()
	// Runs after the namespace's own cleanup has deleted it: the next run's counters
	// must not see this namespace's deletion.
	b.Cleanup(func() {
		waitFor(b, "namespace scale-"+mode+" gone", 5*time.Minute, func() (bool, string) {
			_, err := cs.CoreV1().Namespaces().Get(ctx, "scale-"+mode, metav1.GetOptions{})
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
	})
	ns := namespace(b, "scale-"+mode)
	switch mode {
	case "poll":
		restrictResolver(b, ns, func(_, verb string) bool { return verb == "watch" })
	case "watch-no-events":
		restrictResolver(b, ns, func(resource, verb string) bool { return resource == "events" && verb == "create" })
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		// No selector: the benchmark writes the EndpointSlice, so it knows the moment
		// the Service becomes ready.
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "db", Port: 3306}}},
	}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	before, watchesBefore := apiRequests(b)
	memBefore := nodeMemoryInUse(b)

	annotations := map[string]string{"entrypoint.io/dependency-service": "db"}
	if mode == "image-volume" {
		annotations["entrypoint.io/injection-mode"] = "image-volume"
	}
	d := appDeployment("app", annotations, container("app", "print", "started"))
	d.Spec.Replicas = ptr.To(int32(n))
	d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
	created := watchCreations(b, ns)
	began := time.Now()
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { deleteAndWait(b, ns) })

	// Every resolver runs and has logged that it waits.
	waitFor(b, fmt.Sprintf("%d resolvers waiting", n), 20*time.Minute, func() (bool, string) {
		waiting := len(logLines(b, ns, `"msg":"waiting for dependencies"`))
		return waiting >= n, fmt.Sprintf("%d of %d waiting", waiting, n)
	})
	r := scaleResult{window: window, allRunning: time.Since(began)}
	b.Logf("%s: %d resolvers waiting %s after the Deployment was created", mode, n, r.allRunning.Round(time.Second))
	r.startP50, r.startP99, r.startMax = podStartTimes(b, ns, created.stop())
	// Let the last ones finish their first LIST and WATCH.
	time.Sleep(5 * time.Second)

	start, _ := apiRequests(b)
	r.startupRequests = diff(start, before)
	time.Sleep(window)
	end, openWatches := apiRequests(b)
	r.openWatches = openWatches - watchesBefore
	r.waitingRequests = diff(end, start)
	r.perResolverPerMinute = sum(r.waitingRequests) / float64(n) / window.Minutes()
	r.startupPerResolver = sum(r.startupRequests) / float64(n)
	r.memory = resolverMemory(b)
	r.nodeMemory = nodeMemoryInUse(b) - memBefore
	if r.memory.processes < n {
		b.Fatalf("found %d resolver processes on the node, expected at least %d", r.memory.processes, n)
	}
	if got := len(logLines(b, ns, "started (pid")); got != 0 {
		b.Fatalf("%d applications started before the Service was ready", got)
	}

	// Release: the Service gets a ready endpoint, the moment its create returns (as
	// make bench measures from the update's return).
	create := time.Now()
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "db-1", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.85.0.250"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("db"), Port: ptr.To[int32](3306)}},
	}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	released := time.Now()
	r.createTook = released.Sub(create)
	var starts []time.Duration
	waitFor(b, fmt.Sprintf("%d applications started", n), 10*time.Minute, func() (bool, string) {
		starts = starts[:0]
		for _, l := range logLines(b, ns, "started (pid") {
			at, err := appStartTime(l)
			if err != nil {
				b.Fatal(err)
			}
			starts = append(starts, at.Sub(released))
		}
		return len(starts) >= n, fmt.Sprintf("%d of %d started", len(starts), n)
	})
	slices.Sort(starts)
	r.p50, r.p99, r.max = percentile(starts, 50), percentile(starts, 99), starts[len(starts)-1]
	// Where the time goes: until each resolver logged the dependency ready, and
	// logged that it execs the app (their logs' own clocks); the app's own clock ends it.
	for _, step := range []struct{ what, line string }{
		{"resolver saw it", `"msg":"dependency ready"`},
		{"resolver about to exec", `"msg":"starting application"`},
	} {
		var ds []time.Duration
		for _, l := range logLines(b, ns, step.line) {
			if at, err := logTime(l); err == nil {
				ds = append(ds, at.Sub(released))
			}
		}
		if len(ds) > 0 {
			slices.Sort(ds)
			b.Logf("%s: ready -> %s: p50 %s p99 %s (%d resolvers)", mode, step.what,
				percentile(ds, 50).Round(time.Millisecond), percentile(ds, 99).Round(time.Millisecond), len(ds))
		}
	}
	return r
}

// restrictResolver binds the ServiceAccount "app" to the chart's resolver rules less
// the (resource, verb) pairs drop says, in place of the chart's ClusterRole.
func restrictResolver(b *testing.B, ns string, drop func(resource, verb string) bool) {
	ctx := context.Background()
	role, err := cs.RbacV1().ClusterRoles().Get(ctx, resolverClusterRole, metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var rules []rbacv1.PolicyRule
	for _, r := range role.Rules {
		for _, res := range r.Resources {
			var verbs []string
			for _, v := range r.Verbs {
				if v == "*" {
					b.Fatalf("the resolver ClusterRole grants every verb on %s: cannot take one away", res)
				}
				if !drop(res, v) {
					verbs = append(verbs, v)
				}
			}
			if len(verbs) > 0 {
				rules = append(rules, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: []string{res}, Verbs: verbs})
			}
		}
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "resolver-restricted"}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if err := cs.RbacV1().RoleBindings(ns).Delete(ctx, "app-entrypoint-resolver", metav1.DeleteOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "app-resolver-restricted"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "resolver-restricted"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "app", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
}

// podCreations records when this benchmark first saw each pod of a namespace.
type podCreations struct {
	w    watch.Interface
	mu   sync.Mutex
	seen map[string]time.Time
	done chan struct{}
}

// watchCreations starts watching the namespace's pods, before they are created.
func watchCreations(b testing.TB, ns string) *podCreations {
	w, err := cs.CoreV1().Pods(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	c := &podCreations{w: w, seen: map[string]time.Time{}, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type != watch.Added {
				continue
			}
			c.mu.Lock()
			if _, ok := c.seen[p.Name]; !ok {
				c.seen[p.Name] = time.Now()
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// stop ends the watch and returns when each pod was first seen.
func (c *podCreations) stop() map[string]time.Time {
	c.w.Stop()
	<-c.done
	return c.seen
}

// podStartTimes is p50, p99 and max over the pods of the namespace of the time from
// the pod's creation (created) to its resolver's first line ("waiting for
// dependencies", by the resolver's clock: the same machine's).
func podStartTimes(b testing.TB, ns string, created map[string]time.Time) (p50, p99, maxStart time.Duration) {
	var ds []time.Duration
	for pod, line := range logLinesByPod(b, ns, `"msg":"waiting for dependencies"`) {
		at, err := logTime(line)
		c, ok := created[pod]
		if err != nil || !ok {
			continue
		}
		ds = append(ds, at.Sub(c))
	}
	if len(ds) == 0 {
		b.Fatalf("no pod of %s with both a creation time and a resolver's first line", ns)
	}
	slices.Sort(ds)
	return percentile(ds, 50), percentile(ds, 99), ds[len(ds)-1]
}

// nodeMemoryInUse is MemTotal less MemAvailable of this machine (the node), in bytes.
func nodeMemoryInUse(b testing.TB) int64 {
	raw, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		b.Fatal(err)
	}
	total, okT := kibibytes(string(raw), "MemTotal:")
	avail, okA := kibibytes(string(raw), "MemAvailable:")
	if !okT || !okA {
		b.Fatal("no MemTotal or MemAvailable in /proc/meminfo")
	}
	return total - avail
}

// logLines are the lines containing s in the "app" containers' logs of namespace ns,
// read from the kubelet's log files (no API requests while measuring them).
func logLines(b testing.TB, ns, s string) []string {
	var lines []string
	for _, l := range logLinesByPod(b, ns, s) {
		lines = append(lines, l)
	}
	return lines
}

// logLinesByPod is the first line containing s of each pod's "app" container, by pod
// name. The kubelet keeps a pod's logs in <namespace>_<pod>_<uid>/<container>/.
func logLinesByPod(b testing.TB, ns, s string) map[string]string {
	files, err := filepath.Glob(cluster.Path("pod-logs", ns+"_*", "app", "*.log"))
	if err != nil {
		b.Fatal(err)
	}
	lines := map[string]string{}
	for _, f := range files {
		dir := filepath.Base(filepath.Dir(filepath.Dir(f)))
		pod := strings.TrimPrefix(dir, ns+"_")
		if i := strings.LastIndexByte(pod, '_'); i > 0 {
			pod = pod[:i]
		}
		if _, ok := lines[pod]; ok {
			continue // a restarted container's older log
		}
		fh, err := os.Open(f)
		if err != nil {
			continue // rotated or removed meanwhile
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if l := sc.Text(); strings.Contains(l, s) {
				lines[pod] = l
				break // one per container
			}
		}
		fh.Close()
	}
	return lines
}

// appStartTime reads the clock testapp printed at its start: "... started (pid 1, at T)".
func appStartTime(line string) (time.Time, error) {
	_, after, ok := strings.Cut(line, ", at ")
	if !ok {
		return time.Time{}, fmt.Errorf("no start time in %q", line)
	}
	return time.Parse(time.RFC3339Nano, strings.TrimSuffix(after, ")"))
}

// logTime is the "ts" of a resolver's JSON log line.
func logTime(line string) (time.Time, error) {
	_, after, ok := strings.Cut(line, `"ts":"`)
	if !ok {
		return time.Time{}, fmt.Errorf("no ts in %q", line)
	}
	ts, _, _ := strings.Cut(after, `"`)
	return time.Parse(time.RFC3339Nano, ts)
}

// memoryUse sums what the resolver processes on this machine hold in memory, in bytes.
type memoryUse struct {
	processes int
	// rss is VmRSS: every page mapped in, including the binary's clean file pages.
	rss int64
	// pss splits pages shared between processes among them. With the init container
	// each pod runs its own copy of the binary (from its emptyDir), so file pages are
	// not shared and pss ~ rss; from an image volume they all map the node's one copy.
	pss int64
	// anon is RssAnon: heap and stacks, what the kernel cannot drop and read back from
	// the file under memory pressure.
	anon int64
}

// perProcessMiB is total/processes in MiB.
func (m memoryUse) perProcessMiB(total int64) float64 {
	return float64(total) / (1 << 20) / float64(max(m.processes, 1))
}

// resolverMemory reads VmRSS and RssAnon (status) and Pss (smaps_rollup) of every
// resolver process on this machine.
func resolverMemory(b *testing.B) memoryUse {
	var m memoryUse
	entries, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || filepath.Base(exe) != "kubernetes-entrypoint" {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue // exited meanwhile
		}
		rollup, err := os.ReadFile(filepath.Join("/proc", e.Name(), "smaps_rollup"))
		if err != nil {
			continue
		}
		r, okR := kibibytes(string(status), "VmRSS:")
		a, okA := kibibytes(string(status), "RssAnon:")
		p, okP := kibibytes(string(rollup), "Pss:")
		if !okR || !okA || !okP {
			b.Fatalf("no VmRSS, RssAnon or Pss for resolver process %s", e.Name())
		}
		m.processes++
		m.rss += r
		m.anon += a
		m.pss += p
	}
	return m
}

// kibibytes reads the "<field> <n> kB" line of a /proc file, in bytes.
func kibibytes(text, field string) (int64, bool) {
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == field && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}

// apiRequests reads the API server's /metrics: apiserver_request_total for reads of the
// resources a resolver waiting for a Service reads, by "VERB resource" (a WATCH counts
// when it ends), and how many watches of them are open now.
func apiRequests(b *testing.B) (map[string]float64, float64) {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatalf("reading the API server's /metrics: %v", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		b.Fatalf("parsing the API server's /metrics: %v", err)
	}
	out := map[string]float64{}
	f := families["apiserver_request_total"]
	if f == nil {
		b.Fatal("no apiserver_request_total in the API server's /metrics")
	}
	read := func(l map[string]string) bool {
		switch l["resource"] {
		case "services", "endpointslices", "endpoints":
			return l["verb"] == "GET" || l["verb"] == "LIST" || l["verb"] == "WATCH"
		}
		return false
	}
	for _, m := range f.Metric {
		if l := labels(m); read(l) {
			out[l["verb"]+" "+l["resource"]] += m.GetCounter().GetValue()
		}
	}
	var open float64
	if g := families["apiserver_longrunning_requests"]; g != nil {
		for _, m := range g.Metric {
			if l := labels(m); read(l) && l["verb"] == "WATCH" {
				open += m.GetGauge().GetValue()
			}
		}
	}
	return out, open
}

func labels(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.Label {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func diff(after, before map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if v-before[k] > 0 {
			d[k] = v - before[k]
		}
	}
	return d
}

func sum(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

// waitFor polls cond every second until it holds, reporting progress every 30 s.
func waitFor(b testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	deadline := time.Now().Add(timeout)
	lastReport := time.Now()
	for {
		ok, progress := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: not after %s (%s)", what, timeout, progress)
		}
		if time.Since(lastReport) > 30*time.Second {
			b.Logf("%s: %s", what, progress)
			lastReport = time.Now()
		}
		time.Sleep(time.Second)
	}
}

// deleteAndWait deletes the namespace's Deployment and waits until its pods are gone,
// so that the next run starts on an empty node.
func deleteAndWait(b testing.TB, ns string) {
	ctx := context.Background()
	_ = cs.AppsV1().Deployments(ns).Delete(ctx, "app", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)})
	waitFor(b, "pods of "+ns+" gone", 10*time.Minute, func() (bool, string) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprintf("%d left", len(pods.Items))
	})
}
