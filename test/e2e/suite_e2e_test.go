//go:build e2e && !faults

package e2e

import (
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localcluster"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/openstackhelm"
)

// suite: the webhook on the host network, registered by URL on loopback. The API
// server audits the requests of the openstack ServiceAccounts (and no other), which
// TestOpenstackHelm counts.
var suite = suiteHooks{
	webhookAPIServerHost: "127.0.0.1",
	clusterOptions:       localcluster.Options{AuditServiceAccountsIn: []string{openstackhelm.Namespace}},
}
