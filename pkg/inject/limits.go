package inject

import (
	"strings"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// itemTally adds up the dependency items of a pod's annotations, kind by kind,
// for the caps of spec.MaxItems and spec.MaxSelectorItems.
type itemTally struct {
	total  spec.Counts
	byKind []kindCounts // kinds with items, in the order of the environment contract
}

// kindCounts are the items of one dependency annotation (its key without the prefix).
type kindCounts struct {
	key    string
	counts spec.Counts
}

func (t *itemTally) add(key string, c spec.Counts) {
	if c.Items == 0 {
		return
	}
	t.total.Items += c.Items
	t.total.Selectors += c.Selectors
	t.byKind = append(t.byKind, kindCounts{key: key, counts: c})
}

// checkLimits reports, as one problem, dependencies past spec.MaxItems items or
// spec.MaxSelectorItems selectors, all annotations together: the bounds the
// dependency controller holds every pod to. The problem is at the annotation
// with the most of them, and says how many each annotation holds; past the
// items cap it is the only one, since fixing it changes the selectors too.
func (pl *planner) checkLimits(t itemTally) {
	var (
		of     func(spec.Counts) int
		total  int
		what   string
		remedy string
	)
	switch {
	case t.total.Items > spec.MaxItems:
		of, total = func(c spec.Counts) int { return c.Items }, spec.MaxItems
		what = " dependency items ("
		remedy = "; wait for fewer, broader things: one dependency-pod or dependency-job-json item selects any number " +
			"by labels, one dependency-rollout item stands for a whole workload"
	case t.total.Selectors > spec.MaxSelectorItems:
		of, total = func(c spec.Counts) int { return c.Selectors }, spec.MaxSelectorItems
		what = " dependency items select by labels ("
		remedy = "; each is matched against every pod or Job of its namespace on every change: " +
			"select with fewer, broader labels, or name the Jobs"
	default:
		return
	}
	var (
		b       strings.Builder
		largest kindCounts
		sum     int
	)
	for _, kc := range t.byKind {
		n := of(kc.counts)
		if n == 0 {
			continue
		}
		if sum > 0 {
			b.WriteString(", ")
		}
		sum += n
		b.WriteString(thousands(n) + " in " + AnnotationPrefix + kc.key)
		if n > of(largest.counts) {
			largest = kc
		}
	}
	pl.invalid(annotationPath(largest.key), thousands(sum)+what+b.String()+"), more than the "+
		thousands(total)+" a pod may have"+remedy)
}
