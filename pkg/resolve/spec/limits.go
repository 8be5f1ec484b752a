package spec

import "fmt"

// Bounds every pod's dependencies must keep, whoever wrote them: the webhook
// denies an annotated pod past them, and the dependency controller judges
// nothing of a pod past them (reason TooManyDependencies), whether the webhook
// saw the pod or not. The largest openstack-helm init container names 9 items.
const (
	// MaxItems is the most dependency items of one pod, all kinds together
	// (config templates, sockets, TCP and HTTP checks included).
	MaxItems = 100
	// MaxSelectorItems is the most items that select objects by labels (pods,
	// and Jobs by labels): each is matched against every object of its kind and
	// namespace on every change, so they cost more than items by name.
	MaxSelectorItems = 20
)

// Counts are how many dependency items a Spec holds.
type Counts struct {
	// Items counts every item once; kinds that share items (Supersedes) count
	// them once.
	Items int
	// Selectors counts the items that select by labels.
	Selectors int
}

// Count counts s's items, kind by kind of Kinds.
func Count(s *Spec) Counts {
	var c Counts
	for _, k := range Kinds() {
		if k.Supersedes == "" { // a superseding kind counts the items of the one it supersedes
			c.Items += k.Count(s)
		}
	}
	c.Selectors = len(s.Pods)
	for _, j := range s.Jobs {
		if j.Name == "" {
			c.Selectors++
		}
	}
	return c
}

// LimitError is why a pod's dependencies are past the bounds.
type LimitError struct{ Counts Counts }

func (e *LimitError) Error() string {
	if e.Counts.Items > MaxItems {
		return fmt.Sprintf("%d dependency items, more than %d", e.Counts.Items, MaxItems)
	}
	return fmt.Sprintf("%d dependency items select by labels, more than %d", e.Counts.Selectors, MaxSelectorItems)
}

// CheckLimits returns a *LimitError when s has more than MaxItems items or more
// than MaxSelectorItems selectors.
func CheckLimits(s *Spec) error {
	c := Count(s)
	if c.Items > MaxItems || c.Selectors > MaxSelectorItems {
		return &LimitError{Counts: c}
	}
	return nil
}
