package localcluster

import (
	"os"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The audit policy records the requests of the named namespaces' ServiceAccounts and
// nothing else, and the API server gets the audit flags exactly when the policy exists.
func TestAuditPolicy(t *testing.T) {
	c, err := New(Options{Dir: t.TempDir(), Repo: t.TempDir(), BinDir: t.TempDir(), AuditServiceAccountsIn: []string{"openstack", "demo"}})
	if err != nil {
		t.Fatal(err)
	}
	if flags := c.auditFlags(); flags != nil {
		t.Errorf("audit flags before the policy is written: %v", flags)
	}
	if err := c.writeAuditPolicy(c.auditNamespaces); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(c.Path(auditPolicyFile))
	if err != nil {
		t.Fatal(err)
	}
	var policy struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		OmitStages []string `json:"omitStages"`
		Rules      []struct {
			Level      string   `json:"level"`
			UserGroups []string `json:"userGroups"`
		} `json:"rules"`
	}
	if err := yaml.UnmarshalStrict(raw, &policy); err != nil {
		t.Fatalf("the policy does not parse: %v\n%s", err, raw)
	}
	want := []string{"system:serviceaccounts:openstack", "system:serviceaccounts:demo"}
	if policy.APIVersion != "audit.k8s.io/v1" || policy.Kind != "Policy" || len(policy.Rules) != 2 ||
		policy.Rules[0].Level != "Metadata" || !slices.Equal(policy.Rules[0].UserGroups, want) ||
		policy.Rules[1].Level != "None" || len(policy.Rules[1].UserGroups) != 0 ||
		!slices.Equal(policy.OmitStages, []string{"RequestReceived"}) {
		t.Errorf("policy %+v, want Metadata for %v, then None for everyone else:\n%s", policy, want, raw)
	}
	flags := strings.Join(c.auditFlags(), " ")
	for _, f := range []string{"--audit-policy-file=" + c.Path(auditPolicyFile), "--audit-log-path=" + c.AuditLogPath(), "--audit-log-format=json"} {
		if !strings.Contains(flags, f) {
			t.Errorf("audit flags %q lack %s", flags, f)
		}
	}
	if err := c.writeAuditPolicy([]string{"bad\"name"}); err == nil {
		t.Errorf("a namespace with a quote was written into the policy")
	}
}
