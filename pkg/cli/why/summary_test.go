package why

import (
	"fmt"
	"testing"
)

func TestSummarize(t *testing.T) {
	waiting := func(name, reason string) Dependency {
		return Dependency{Name: name, State: StateWaiting, Reason: reason}
	}
	ready := func(name string) Dependency { return Dependency{Name: name, State: StateReady} }
	unknown := func(name string) Dependency { return Dependency{Name: name, State: StateUnknown} }
	cond := func(reason string) *Condition { return &Condition{Status: "False", Reason: reason} }
	for _, tc := range []struct {
		name    string
		reports []Report
		// want is Blocked/Pods, the blockers (name pods reasons), the
		// conditions and the unknown dependencies.
		want string
	}{
		{name: "nothing blocks",
			reports: []Report{{Dependencies: []Dependency{ready("service ns/db")}, Condition: &Condition{Status: "True", Reason: "Ready"}}},
			want:    "0/1 [] [{Ready 1}] []"},
		{name: "shared blocker first",
			reports: []Report{
				{Blocked: true, Dependencies: []Dependency{waiting("job ns/m", "running"), waiting("service ns/db", "no endpoints")}, Condition: cond("Waiting")},
				{Blocked: true, Dependencies: []Dependency{ready("job ns/m"), waiting("service ns/db", "no endpoints")}, Condition: cond("Waiting")},
				{Blocked: true, Dependencies: []Dependency{waiting("service ns/db", "1 of 2 endpoints ready")}},
			},
			want: "3/3 [{service ns/db 3 [no endpoints 1 of 2 endpoints ready]} {job ns/m 1 [running]}] [{Waiting 2} {not set 1}] []"},
		{name: "reasons capped",
			reports: []Report{
				{Blocked: true, Dependencies: []Dependency{waiting("job ns/m", "a")}}, {Blocked: true, Dependencies: []Dependency{waiting("job ns/m", "b")}},
				{Blocked: true, Dependencies: []Dependency{waiting("job ns/m", "c")}}, {Blocked: true, Dependencies: []Dependency{waiting("job ns/m", "d")}},
			},
			want: "4/4 [{job ns/m 4 [a b c]}] [{not set 4}] []"},
		{name: "gate, problem, unknown",
			reports: []Report{
				{Blocked: true, HeldByGate: true, Dependencies: []Dependency{ready("service ns/db"), unknown("tcp c:1")}, Condition: cond("Ready")},
				{Blocked: true, Problem: "annotation unreadable"},
				{Dependencies: []Dependency{unknown("tcp c:1")}},
			},
			want: "2/3 [{the scheduling gate 1 [no dependency waits now: the controller has not released the pod yet]} {its dependencies, unreadable 1 [annotation unreadable]}] [{Ready 1} {not set 2}] [tcp c:1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Summarize("deployment ns/web", tc.reports)
			got := fmt.Sprintf("%d/%d %v %v %v", s.Blocked, s.Pods, s.Blockers, s.Conditions, s.Unknown)
			if got != tc.want {
				t.Errorf("Summarize:\n got %s\nwant %s", got, tc.want)
			}
			if s.Workload != "deployment ns/web" || len(s.Reports) != len(tc.reports) {
				t.Errorf("Summarize keeps workload %q and %d reports of %d", s.Workload, len(s.Reports), len(tc.reports))
			}
		})
	}
}
