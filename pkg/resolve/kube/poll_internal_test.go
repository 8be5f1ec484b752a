package kube

import (
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestNextPollInterval(t *testing.T) {
	const base = 2 * time.Second
	for _, tc := range []struct {
		current           time.Duration
		changed           bool
		requests, members int
		want              time.Duration
	}{
		{base, false, 1, 1, 2500 * time.Millisecond},
		{2500 * time.Millisecond, false, 1, 1, 3 * time.Second},
		{3 * time.Second, false, 1, 1, 3 * time.Second},
		{3 * time.Second, true, 1, 1, base},
		{base, true, 1, 1, base},
		{base, false, 2, 3, 2500 * time.Millisecond}, // shared, but not two per request
		{base, false, 1, 2, base},                    // shared: already half the cost
		{3 * time.Second, false, 1, 3, base},         // a member joined: shared now
	} {
		if got := nextPollInterval(tc.current, base, tc.changed, tc.requests, tc.members); got != tc.want {
			t.Errorf("nextPollInterval(%s, %s, changed=%v, %d requests for %d) = %s, want %s",
				tc.current, base, tc.changed, tc.requests, tc.members, got, tc.want)
		}
	}
}

// plan shares requests only where a shared answer can be cut back to exactly what
// each source selects.
func TestPollPlan(t *testing.T) {
	jobs := schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
	type member struct {
		field, label string
		byName       bool
	}
	for _, tc := range []struct {
		name     string
		resource schema.GroupVersionResource
		unshared bool
		members  []member
		want     []string // one per request: "get NAME" or "list FIELD|LABEL", * when shared
	}{
		{
			name:     "services of one namespace",
			resource: endpointSlicesResource,
			members:  []member{{label: "kubernetes.io/service-name=b"}, {label: "kubernetes.io/service-name=a"}, {label: "kubernetes.io/service-name=c"}},
			want:     []string{"list |kubernetes.io/service-name in (a,b,c) *"},
		},
		{
			name:     "one service alone keeps its own selector",
			resource: endpointSlicesResource,
			members:  []member{{label: "kubernetes.io/service-name=a"}},
			want:     []string{"list |kubernetes.io/service-name=a"},
		},
		{
			name:     "the same selector twice is one request",
			resource: endpointSlicesResource,
			members:  []member{{label: "kubernetes.io/service-name=a"}, {label: "kubernetes.io/service-name=a"}},
			want:     []string{"list |kubernetes.io/service-name=a"},
		},
		{
			name:     "jobs by name: one list of the namespace",
			resource: jobs,
			members:  []member{{field: "metadata.name=db-sync"}, {field: "metadata.name=db-init"}},
			want:     []string{"list | *"},
		},
		{
			name:     "jobs by name and by labels",
			resource: jobs,
			members:  []member{{field: "metadata.name=db-sync"}, {label: "app=nova"}},
			want:     []string{"list metadata.name=db-sync|", "list |app=nova"},
		},
		{
			name:     "pods by name are never a list of the namespace",
			resource: podsResource,
			members:  []member{{field: "metadata.name=me"}, {field: "metadata.name=other"}},
			want:     []string{"list metadata.name=me|", "list metadata.name=other|"},
		},
		{
			name:     "pods by labels on this node: keys they share",
			resource: podsResource,
			members: []member{
				{field: "spec.nodeName=n1", label: "application=libvirt,component=libvirt"},
				{field: "spec.nodeName=n1", label: "application=neutron,component=neutron-ovs-agent"},
			},
			want: []string{"list spec.nodeName=n1|application in (libvirt,neutron),component in (libvirt,neutron-ovs-agent) *"},
		},
		{
			name:     "different field selectors are not shared",
			resource: podsResource,
			members:  []member{{field: "spec.nodeName=n1", label: "a=1"}, {field: "spec.nodeName=n2", label: "a=2"}},
			want:     []string{"list spec.nodeName=n1|a=1", "list spec.nodeName=n2|a=2"},
		},
		{
			name:     "no key in common",
			resource: podsResource,
			members:  []member{{label: "a=1"}, {label: "b=2"}},
			want:     []string{"list |a=1", "list |b=2"},
		},
		{
			name:     "set-based selectors are not combined",
			resource: podsResource,
			members:  []member{{label: "a in (1,2)"}, {label: "a=3"}},
			want:     []string{"list |a in (1,2)", "list |a=3"},
		},
		{
			name:     "read by name",
			resource: jobs,
			members:  []member{{field: "metadata.name=x", byName: true}, {field: "metadata.name=x", byName: true}, {field: "metadata.name=y", byName: true}},
			want:     []string{"get x", "get y"},
		},
		{
			name:     "after a shared request was refused",
			resource: jobs,
			unshared: true,
			members:  []member{{field: "metadata.name=db-sync"}, {field: "metadata.name=db-init"}},
			want:     []string{"list metadata.name=db-init|", "list metadata.name=db-sync|"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &pollGroup{key: pollKey{tc.resource, "ns"}, unshared: tc.unshared}
			var members []*pollMember
			for _, m := range tc.members {
				members = append(members, &pollMember{byName: m.byName, src: source{resource: tc.resource, namespace: "ns", fieldSelector: m.field, labelSelector: m.label}})
			}
			var got []string
			served := 0
			for _, r := range g.plan(members) {
				served += len(r.members)
				s := "get " + r.get
				if r.get == "" {
					s = "list " + r.opts.FieldSelector + "|" + r.opts.LabelSelector
				}
				if r.shared {
					s += " *"
				}
				got = append(got, s)
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("plan:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if served != len(members) {
				t.Errorf("the requests serve %d members, want %d", served, len(members))
			}
		})
	}
}
