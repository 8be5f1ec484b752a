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

// Count counts s's items. It runs for every pod the controller looks at, so it
// sums the lists directly rather than through Kinds (which builds the table);
// TestCountCoversEverySlice keeps it complete.
func Count(s *Spec) Counts {
	c := Counts{
		Items: len(s.Services) + len(s.Jobs) + len(s.DaemonSets) + len(s.Containers) + len(s.Pods) +
			len(s.CustomResources) + len(s.CEL) + len(s.Rollouts) + len(s.Claims) + len(s.ConfigMaps) +
			len(s.Secrets) + len(s.CRDs) + len(s.Configs) + len(s.Sockets) + len(s.TCP) + len(s.HTTP),
		Selectors: len(s.Pods),
	}
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
