package commands

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/status"
)

// blockerCell fits the blockers in statusBlockersWidth and counts the rest.
func TestBlockerCell(t *testing.T) {
	long := strings.Repeat("x", 80)
	tests := []struct {
		name string
		w    status.Workload
		want string
	}{
		{"none", status.Workload{}, "-"},
		{"none named, some unnamed", status.Workload{Unnamed: 2}, "(+2 more)"},
		{"all fit", status.Workload{Blockers: []status.Blocker{{Name: "service ns/db"}, {Name: "job ns/m"}}}, "service ns/db, job ns/m"},
		{"cut", status.Workload{Blockers: []status.Blocker{{Name: "service ns/" + strings.Repeat("a", 30)}, {Name: "service ns/" + strings.Repeat("b", 30)}, {Name: "job ns/m"}}, Unnamed: 1},
			"service ns/" + strings.Repeat("a", 30) + " (+3 more)"},
		{"a first name too long", status.Workload{Blockers: []status.Blocker{{Name: "service ns/" + long}}},
			"service ns/" + strings.Repeat("x", 46) + "..."},
		{"escaped before measured", status.Workload{Blockers: []status.Blocker{{Name: "configmap ns/a\x1b[31m"}}}, `configmap ns/a\x1b[31m`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(blockerCell(tt.w)); got != tt.want {
				t.Errorf("blockerCell = %q, want %q", got, tt.want)
			}
		})
	}
}

// The table has at most statusMaxRows rows, then a note; -A adds NAMESPACE.
func TestPrintStatusBounds(t *testing.T) {
	var many []status.Workload
	for i := range statusMaxRows + 3 {
		many = append(many, status.Workload{Namespace: "ns", Name: fmt.Sprintf("deployment/w%02d", i), Waiting: 1, Pods: 2, Reasons: []string{"Waiting"}})
	}
	tests := []struct {
		name      string
		all       bool
		workloads []status.Workload
		lines     int
		first     string
		last      string
	}{
		{"nothing waits", false, nil, 1, "no pod waits for its dependencies in namespace ns", ""},
		{"nothing waits anywhere", true, nil, 1, "no pod waits for its dependencies in any namespace", ""},
		{"capped", false, many, statusMaxRows + 2, "WORKLOAD        WAITING  REASON   BLOCKERS", "... and 3 more workloads waiting (-o json lists them all)"},
		{"every namespace", true, many[:1], 2, "NAMESPACE  WORKLOAD        WAITING  REASON   BLOCKERS", "ns         deployment/w00  1/2      Waiting  -"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := printStatus(&out, "", "ns", tt.all, tt.workloads); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) != tt.lines || lines[0] != tt.first || (tt.last != "" && lines[len(lines)-1] != tt.last) {
				t.Errorf("%d lines, want %d, first %q and last %q:\n%s", len(lines), tt.lines, tt.first, tt.last, out.String())
			}
		})
	}
}
