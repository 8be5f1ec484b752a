package kube

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
)

// Polls of one kind and namespace share one request.
//
// Where RBAC forbids watch (helm-toolkit grants get and list only), every source of
// one resource in one namespace joins a pollGroup. Each round the group reads what
// all its members select with as few requests as it can and hands each member its
// own snapshot, filtered from the shared answer as the API server would have
// filtered it, so that a source sees exactly what its own list would show:
//
//   - sources with the same selectors share a request;
//   - sources that select by label equality (kubernetes.io/service-name=a, =b) with
//     the same field selector share `key in (a,b)` over the keys they all use;
//   - sources that select one object by name (metadata.name=x) share one list of
//     the namespace, except pods, of which a namespace may hold thousands;
//   - sources that may only be read by name (list forbidden) are read with GET.
//
// When the API server refuses a shared request (RBAC by resourceNames allows a
// list by name, not of the whole namespace), the group stops sharing and reads
// each source with its own selectors.
//
// A group polls every PollInterval while what its members see changes, or while
// its requests are shared (at least two dependencies per request: at the default
// 2 s that is at most 15 requests a minute per dependency). Otherwise, after each
// round that changed nothing, it waits a quarter of the interval longer, up to 1.5
// times the interval: a single dependency waiting long costs 20 requests a minute
// instead of 30, and its median release (half an interval) is 1.5 s instead of 1 s.
// No schedule can do both: under 24 requests a minute, the polls are 2.5 s apart on
// average, and then the median wait for the next one is at least 1.25 s.

// pollRequestTimeout bounds one poll request, so that a lost connection cannot
// hold a whole group's polls.
const pollRequestTimeout = 15 * time.Second

// nextPollInterval is the wait before the next round of a group whose last round
// saw a change or not, and made requests for members.
func nextPollInterval(current, base time.Duration, changed bool, requests, members int) time.Duration {
	if changed || 2*requests <= members {
		return base
	}
	return min(current+base/4, base*3/2)
}

type pollKey struct {
	resource  schema.GroupVersionResource
	namespace string
}

type pollGroup struct {
	client  *Client
	key     pollKey
	members map[*pollMember]struct{} // guarded by client.pollMu
	// unshared is set once the API server refused a shared request; only the
	// group's goroutine uses it.
	unshared bool
}

// pollMember is one source taking part in a group's polls.
type pollMember struct {
	src    source
	byName bool   // list is forbidden: GET the one object
	seen   string // fingerprint of the last snapshot handed over; the group's goroutine only

	mu     sync.Mutex
	latest snapshot
	notify chan struct{} // capacity 1: a new latest snapshot
}

// poll takes part in the polls of src's kind and namespace until ctx ends,
// emitting each snapshot that differs from the one before (first is the last one
// emitted).
func (c *Client) poll(ctx context.Context, src source, byName bool, first snapshot, emit func(snapshot)) {
	m := &pollMember{src: src, byName: byName, seen: fingerprint(first), notify: make(chan struct{}, 1)}
	c.join(m)
	defer c.leave(m)
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.notify:
			m.mu.Lock()
			s := m.latest
			m.mu.Unlock()
			emit(s)
		}
	}
}

func (m *pollMember) deliver(s snapshot) {
	m.mu.Lock()
	m.latest = s
	m.mu.Unlock()
	select {
	case m.notify <- struct{}{}:
	default: // the member has not taken the previous one yet; it will read this one
	}
}

func (c *Client) join(m *pollMember) {
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	k := pollKey{m.src.resource, m.src.namespace}
	g := c.polls[k]
	if g == nil {
		g = &pollGroup{client: c, key: k, members: map[*pollMember]struct{}{}}
		if c.polls == nil {
			c.polls = map[pollKey]*pollGroup{}
		}
		c.polls[k] = g
		go g.run()
	}
	g.members[m] = struct{}{}
}

func (c *Client) leave(m *pollMember) {
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	if g := c.polls[pollKey{m.src.resource, m.src.namespace}]; g != nil {
		delete(g.members, m)
	}
}

// run polls until the group has no members left.
func (g *pollGroup) run() {
	base := g.client.opts.PollInterval
	interval := base
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for range timer.C {
		members := g.current()
		if members == nil {
			return
		}
		changed, requests := g.round(members)
		interval = nextPollInterval(interval, base, changed, requests, len(members))
		timer.Reset(interval)
	}
}

// current lists the members, in a stable order; nil, and the group is gone, when
// none is left.
func (g *pollGroup) current() []*pollMember {
	c := g.client
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	if len(g.members) == 0 {
		delete(c.polls, g.key)
		return nil
	}
	out := make([]*pollMember, 0, len(g.members))
	for m := range g.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].src.String() < out[j].src.String() })
	return out
}

// round reads every member's source once and hands over the snapshots that
// changed; it tells whether any did, and how many requests it made.
func (g *pollGroup) round(members []*pollMember) (bool, int) {
	ctx, cancel := context.WithTimeout(context.Background(), pollRequestTimeout)
	defer cancel()
	snaps, requests := g.read(ctx, members)
	changed := false
	for _, m := range members {
		s := snaps[m]
		if fp := fingerprint(s); fp != m.seen {
			m.seen = fp
			changed = true
			m.deliver(s)
		}
	}
	return changed, requests
}

// pollRequest is one request of a round and the members it answers.
type pollRequest struct {
	get     string // GET this name instead of a LIST
	opts    metav1.ListOptions
	shared  bool // the answer holds more than a member selects: filter it per member
	members []*pollMember
}

// read answers every member with as few requests as the plan allows, and counts them.
func (g *pollGroup) read(ctx context.Context, members []*pollMember) (map[*pollMember]snapshot, int) {
	out := make(map[*pollMember]snapshot, len(members))
	client := g.client.dynamic.Resource(g.key.resource).Namespace(g.key.namespace)
	requests := 0
	for _, r := range g.plan(members) {
		requests++
		if r.get != "" {
			s := g.client.get(ctx, r.members[0].src, r.get)
			for _, m := range r.members {
				out[m] = s
			}
			continue
		}
		list, err := client.List(ctx, r.opts)
		if err != nil && r.shared && apierrors.IsForbidden(err) {
			g.unshared = true
			g.client.logOnce("unshared "+g.key.resource.String()+" "+g.key.namespace,
				"a shared poll was refused; reading each dependency with its own request",
				"resource", g.key.resource.String(), "namespace", g.key.namespace, "error", err.Error())
			snaps, n := g.read(ctx, r.members)
			for m, s := range snaps {
				out[m] = s
			}
			requests += n
			continue
		}
		for _, m := range r.members {
			if err != nil {
				out[m] = snapshot{err: err}
				continue
			}
			out[m] = selectFor(m.src, list.Items, r.shared)
		}
	}
	return out, requests
}

// plan groups the members into as few requests as the rules above allow.
func (g *pollGroup) plan(members []*pollMember) []*pollRequest {
	var exact []*pollRequest // one per distinct GET or selector pair, in member order
	index := map[string]*pollRequest{}
	for _, m := range members {
		k := "list " + m.src.fieldSelector + " " + m.src.labelSelector
		r := &pollRequest{opts: metav1.ListOptions{FieldSelector: m.src.fieldSelector, LabelSelector: m.src.labelSelector}}
		if m.byName {
			k = "get " + m.src.name()
			if m.src.getOnly { // its values are dropped: not an answer for others
				k = "get keys " + m.src.name()
			}
			r = &pollRequest{get: m.src.name()}
		}
		if index[k] == nil {
			index[k] = r
			exact = append(exact, r)
		}
		index[k].members = append(index[k].members, m)
	}
	if g.unshared {
		return exact
	}
	var out, byName []*pollRequest
	byLabels := map[string][]*pollRequest{} // by field selector
	var fieldSelectors []string
	for _, r := range exact {
		src := r.members[0].src
		switch {
		case r.get != "":
			out = append(out, r)
		case src.name() != "" && g.key.resource != podsResource:
			byName = append(byName, r)
		case src.labelSelector != "" && equalities(src.labelSelector) != nil:
			if byLabels[src.fieldSelector] == nil {
				fieldSelectors = append(fieldSelectors, src.fieldSelector)
			}
			byLabels[src.fieldSelector] = append(byLabels[src.fieldSelector], r)
		default:
			out = append(out, r)
		}
	}
	if len(byName) > 1 {
		out = append(out, merge(byName, metav1.ListOptions{}))
	} else {
		out = append(out, byName...)
	}
	for _, fs := range fieldSelectors {
		rs := byLabels[fs]
		sel, ok := commonIn(rs)
		if len(rs) < 2 || !ok {
			out = append(out, rs...)
			continue
		}
		out = append(out, merge(rs, metav1.ListOptions{FieldSelector: fs, LabelSelector: sel}))
	}
	return out
}

func merge(rs []*pollRequest, opts metav1.ListOptions) *pollRequest {
	m := &pollRequest{opts: opts, shared: true}
	for _, r := range rs {
		m.members = append(m.members, r.members...)
	}
	return m
}

// equalities reads a label selector made only of key=value terms; nil otherwise.
func equalities(selector string) map[string]string {
	sel, err := labels.Parse(selector)
	if err != nil {
		return nil
	}
	reqs, selectable := sel.Requirements()
	if !selectable || len(reqs) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, r := range reqs {
		values := r.Values().UnsortedList()
		if (r.Operator() != selection.Equals && r.Operator() != selection.DoubleEquals) || len(values) != 1 {
			return nil
		}
		out[r.Key()] = values[0]
	}
	return out
}

// commonIn is `key in (values...)` for every key all the requests' selectors use;
// false when they share no key.
func commonIn(rs []*pollRequest) (string, bool) {
	values := map[string]map[string]bool{}
	for i, r := range rs {
		eq := equalities(r.members[0].src.labelSelector)
		for k := range values {
			if _, ok := eq[k]; !ok {
				delete(values, k)
			}
		}
		for k, v := range eq {
			if i == 0 {
				values[k] = map[string]bool{}
			}
			if values[k] != nil {
				values[k][v] = true
			}
		}
	}
	if len(values) == 0 {
		return "", false
	}
	sel := labels.NewSelector()
	for k, set := range values {
		vs := make([]string, 0, len(set))
		for v := range set {
			vs = append(vs, v)
		}
		sort.Strings(vs)
		req, err := labels.NewRequirement(k, selection.In, vs)
		if err != nil {
			return "", false
		}
		sel = sel.Add(*req)
	}
	return sel.String(), true
}

// selectFor is the snapshot src's own request would have given: from a shared
// answer, only the objects its selectors match.
func selectFor(src source, items []unstructured.Unstructured, shared bool) snapshot {
	var match func(*unstructured.Unstructured) bool
	if shared {
		if name := src.name(); name != "" {
			match = func(o *unstructured.Unstructured) bool { return o.GetName() == name }
		} else {
			// The field selector was the same for every member: the API server applied it.
			sel, err := labels.Parse(src.labelSelector)
			if err != nil {
				return snapshot{err: err}
			}
			match = func(o *unstructured.Unstructured) bool { return sel.Matches(labels.Set(o.GetLabels())) }
		}
	}
	objects := make(map[string]*unstructured.Unstructured, len(items))
	for i := range items {
		if match == nil || match(&items[i]) {
			objects[key(&items[i])] = &items[i]
		}
	}
	return snapshot{objects: sorted(objects)}
}

// fingerprint identifies a snapshot's content: its objects' versions, or its error.
func fingerprint(s snapshot) string {
	if s.err != nil {
		return "error " + s.err.Error()
	}
	var b strings.Builder
	for _, o := range s.objects {
		b.WriteString(key(o))
		b.WriteByte('@')
		b.WriteString(o.GetResourceVersion())
		b.WriteByte(' ')
	}
	return b.String()
}
