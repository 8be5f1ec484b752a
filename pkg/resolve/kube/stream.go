package kube

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
)

// source is one scoped set of objects a dependency observes.
type source struct {
	resource      schema.GroupVersionResource
	namespace     string // empty for cluster-scoped resources
	fieldSelector string
	labelSelector string
	// getOnly reads the one object named by fieldSelector with GET, polled,
	// never with LIST or WATCH, and drops its values (KeysOnly): Secrets.
	getOnly bool
}

func (s source) String() string {
	out := s.resource.Resource
	if s.resource.Group != "" {
		out += "." + s.resource.Group
	}
	if s.namespace != "" {
		out += " in " + s.namespace
	}
	if sel := joinSelectors(s.fieldSelector, s.labelSelector); sel != "" {
		out += " (" + sel + ")"
	}
	return out
}

// name is the object a source selects by name alone (field selector
// metadata.name=X and nothing else), or "".
func (s source) name() string {
	name, ok := strings.CutPrefix(s.fieldSelector, "metadata.name=")
	if !ok || s.labelSelector != "" || strings.ContainsAny(name, ",=!") {
		return ""
	}
	return name
}

func joinSelectors(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "," + b
}

// snapshot is the current content of a source, or why it cannot be read.
type snapshot struct {
	objects []*unstructured.Unstructured // sorted by namespace/name
	err     error
}

// Retry delays for transient errors (connection refused, timeouts, 5xx): quick at
// first, never hammering the API server, and capped low enough that an API server
// back after an outage is seen within seconds. Each wait is jittered so that
// hundreds of resolvers that lost it at the same moment do not return in step.
// Forbidden and NotFound are not transient: they wait a poll interval.
const (
	minRetryDelay = 100 * time.Millisecond
	maxRetryDelay = 4 * time.Second
)

// jittered is d shortened by up to half, at random.
func jittered(d time.Duration) time.Duration {
	return d - rand.N(d/2+1)
}

// follow keeps every source current and calls eval with their latest snapshots,
// once all of them have been read at least once and again after every change. It
// returns when eval reports done or an error, or when ctx ends.
func (c *Client) follow(ctx context.Context, sources []source, eval func([]snapshot) (bool, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type update struct {
		index int
		snap  snapshot
	}
	updates := make(chan update)
	for i, src := range sources {
		go c.stream(ctx, src, func(s snapshot) {
			select {
			case updates <- update{i, s}:
			case <-ctx.Done():
			}
		})
	}
	latest := make([]snapshot, len(sources))
	seen := make([]bool, len(sources))
	unseen := len(sources)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case u := <-updates:
			latest[u.index] = u.snap
			if !seen[u.index] {
				seen[u.index] = true
				unseen--
			}
			if unseen > 0 {
				continue
			}
			done, err := eval(latest)
			if err != nil || done {
				return err
			}
		}
	}
}

// stream lists src, then watches it from the listed resourceVersion, emitting a
// snapshot after every change. Where watch is forbidden it joins the polls of its
// kind and namespace (poll.go); where list is forbidden for a named object it reads
// that object by name. Errors are emitted as snapshots and retried with backoff; it
// only returns when ctx ends.
func (c *Client) stream(ctx context.Context, src source, emit func(snapshot)) {
	client := c.dynamic.Resource(src.resource).Namespace(src.namespace)
	opts := metav1.ListOptions{FieldSelector: src.fieldSelector, LabelSelector: src.labelSelector}
	if src.getOnly {
		snap := c.get(ctx, src, src.name())
		emit(snap)
		c.poll(ctx, src, true, snap, emit)
		return
	}
	delay := minRetryDelay      // after failed lists
	watchDelay := minRetryDelay // after watches that fail or end at once
	for ctx.Err() == nil {
		list, err := client.List(ctx, opts)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if name := src.name(); name != "" && apierrors.IsForbidden(err) {
				if snap, ok := c.getByName(ctx, src, name); ok {
					c.logOnce("get "+src.String(), "list not allowed; reading it by name instead",
						"source", src.String(), "every", c.opts.PollInterval.String(), "hint", "grant list and watch to react at once")
					emit(snap)
					c.poll(ctx, src, true, snap, emit)
					return
				}
			}
			emit(snapshot{err: err})
			if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
				// RBAC or a missing API: nothing changes quickly, so do not spin.
				c.logOnce("list "+src.String(), "cannot list; retrying", "source", src.String(), "error", err.Error(), "every", c.opts.PollInterval.String())
				sleep(ctx, c.opts.PollInterval)
			} else {
				wait := jittered(delay)
				c.opts.Log.V(1).Info("list failed; retrying", "source", src.String(), "error", err.Error(), "in", wait.String())
				sleep(ctx, wait)
				delay = min(2*delay, maxRetryDelay)
			}
			continue
		}
		delay = minRetryDelay
		objects := make(map[string]*unstructured.Unstructured, len(list.Items))
		for i := range list.Items {
			objects[key(&list.Items[i])] = &list.Items[i]
		}
		snap := snapshot{objects: sorted(objects)}
		emit(snap)
		wopts := opts
		wopts.ResourceVersion = list.GetResourceVersion()
		wopts.AllowWatchBookmarks = true
		w, err := client.Watch(ctx, wopts)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if apierrors.IsForbidden(err) || apierrors.IsMethodNotSupported(err) {
				c.logOnce("watch "+src.String(), "watch not allowed; polling instead",
					"source", src.String(), "every", c.opts.PollInterval.String(), "error", err.Error())
				c.poll(ctx, src, false, snap, emit)
				return
			}
			wait := jittered(watchDelay)
			c.opts.Log.V(1).Info("watch failed; listing again", "source", src.String(), "error", err.Error(), "in", wait.String())
			sleep(ctx, wait)
			watchDelay = min(2*watchDelay, maxRetryDelay)
			continue
		}
		began := time.Now()
		if err := consume(ctx, w, objects, emit); err != nil && ctx.Err() == nil {
			c.opts.Log.V(1).Info("watch ended; listing again", "source", src.String(), "reason", err.Error())
		}
		// Watches normally last minutes; one that keeps ending at once must not turn
		// into a tight list+watch loop against the API server.
		if time.Since(began) < time.Second {
			sleep(ctx, jittered(watchDelay))
			watchDelay = min(2*watchDelay, maxRetryDelay)
		} else {
			watchDelay = minRetryDelay
		}
	}
}

// getByName reads the one object a name-scoped source selects, as the snapshot a
// list would give; ok is false when that fails too (not allowed either, or a
// transient error: the list is tried again first).
func (c *Client) getByName(ctx context.Context, src source, name string) (snapshot, bool) {
	snap := c.get(ctx, src, name)
	return snap, snap.err == nil
}

// get reads one object by name: a snapshot of it, empty when it does not exist.
func (c *Client) get(ctx context.Context, src source, name string) snapshot {
	obj, err := c.dynamic.Resource(src.resource).Namespace(src.namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		if src.getOnly {
			KeysOnly(obj)
		}
		return snapshot{objects: []*unstructured.Unstructured{obj}}
	case apierrors.IsNotFound(err):
		// Authorization comes before the lookup: NotFound means allowed and absent.
		return snapshot{}
	}
	return snapshot{err: err}
}

// errWatchClosed is the normal end of a watch (server timeout): list again.
var errWatchClosed = errors.New("watch closed by the server")

// consume applies watch events to objects until the watch ends.
func consume(ctx context.Context, w watch.Interface, objects map[string]*unstructured.Unstructured, emit func(snapshot)) error {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return errWatchClosed
			}
			switch ev.Type {
			case watch.Added, watch.Modified, watch.Deleted:
				obj, ok := ev.Object.(*unstructured.Unstructured)
				if !ok {
					continue
				}
				if ev.Type == watch.Deleted {
					delete(objects, key(obj))
				} else {
					objects[key(obj)] = obj
				}
				emit(snapshot{objects: sorted(objects)})
			case watch.Error:
				// Typically 410 Gone: the resourceVersion is too old; list again.
				return apierrors.FromObject(ev.Object)
			}
		}
	}
}

func key(o *unstructured.Unstructured) string { return o.GetNamespace() + "/" + o.GetName() }

func sorted(objects map[string]*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, len(objects))
	for _, o := range objects {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
