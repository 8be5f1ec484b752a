package localcluster

import (
	"fmt"
	"os"
	"strings"
)

// auditPolicyFile, in the state directory, is kube-apiserver's audit policy; it exists
// only when Options.AuditServiceAccountsIn names namespaces, and its presence is what
// turns the audit flags on, so that a restart by another process keeps them.
const auditPolicyFile = "audit-policy.yaml"

// AuditLogPath is kube-apiserver's audit log (JSON lines, one per request and stage)
// when the cluster was started with Options.AuditServiceAccountsIn; it does not exist
// otherwise.
func (c *Cluster) AuditLogPath() string { return c.Path("logs", "audit.log") }

// writeAuditPolicy writes the policy that records, at level Metadata (who, what verb,
// which object, the answer's code: no bodies), the requests of the ServiceAccounts of
// namespaces and nothing else, so that the log stays small whatever else runs: the
// control plane's own requests and those of every other ServiceAccount fall through
// to the last rule, level None. RequestReceived is left out: each request is logged
// once when its answer starts (a watch) and once when it completes.
func (c *Cluster) writeAuditPolicy(namespaces []string) error {
	var groups []string
	for _, ns := range namespaces {
		if ns == "" || strings.ContainsAny(ns, "\"\n") {
			return fmt.Errorf("audit: %q is not a namespace name", ns)
		}
		groups = append(groups, fmt.Sprintf("%q", "system:serviceaccounts:"+ns))
	}
	policy := strings.Join([]string{
		"apiVersion: audit.k8s.io/v1",
		"kind: Policy",
		"omitStages: [RequestReceived]",
		"rules:",
		"- level: Metadata",
		"  userGroups: [" + strings.Join(groups, ", ") + "]",
		"- level: None",
		"",
	}, "\n")
	return os.WriteFile(c.Path(auditPolicyFile), []byte(policy), 0o644)
}

// auditFlags are kube-apiserver's audit flags when the policy file exists: the log
// backend writes each event as it happens (mode blocking, the default), unrotated.
func (c *Cluster) auditFlags() []string {
	if _, err := os.Stat(c.Path(auditPolicyFile)); err != nil {
		return nil
	}
	return []string{
		"--audit-policy-file=" + c.Path(auditPolicyFile),
		"--audit-log-path=" + c.AuditLogPath(),
		"--audit-log-format=json",
		"--audit-log-maxsize=0",
	}
}
