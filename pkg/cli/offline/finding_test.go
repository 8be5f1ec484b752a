package offline

import (
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
)

// A finding's file, kind and names are escaped in its line; its message is
// left to the caller, which keeps its lines.
func TestFindingString(t *testing.T) {
	tests := []struct {
		name string
		f    Finding
		want string
	}{
		{"plain", Finding{Source: "deploy.yaml", Line: 3, Kind: "Deployment", Namespace: "ns", Name: "web", Severity: SeverityError, Message: "bad"},
			"deploy.yaml:3: Deployment ns/web: bad"},
		{"note", Finding{Source: "<stdin>", Line: 1, Kind: "Pod", Name: "p", Severity: SeverityNote, Message: "see"},
			"<stdin>:1: note: Pod p: see"},
		{"hostile names", Finding{Source: "a\rb.yaml", Line: 7, Kind: "Deployment\u202e", Namespace: "ns\x1b[2J", Name: "web\u009b\ny", Severity: SeverityError, Message: "m"},
			`a\rb.yaml:7: Deployment\u202e ns\x1b[2J/web\u009b\ny: m`},
		{"message as written", Finding{Source: "f", Line: 1, Kind: "Pod", Name: "p", Severity: SeverityError, Message: "one\ntwo"},
			"f:1: Pod p: one\ntwo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.f.String()
			if got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if tt.f.Message == "m" && !safetext.Safe(got) {
				t.Errorf("String() = %q is not safe", got)
			}
		})
	}
}
