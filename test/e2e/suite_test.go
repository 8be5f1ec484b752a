//go:build e2e

package e2e

import "github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localcluster"

// suiteHooks is what differs between the end-to-end suite (make e2e) and the fault
// scenarios (make faults, build tag faults): the same TestMain runs both.
type suiteHooks struct {
	clusterOptions localcluster.Options
	// beforeInstall runs once the cluster is up, before the chart is installed.
	beforeInstall func(*localcluster.Cluster) error
	// webhookAPIServerHost is where the webhook pods reach the API server.
	webhookAPIServerHost string
	// installOverrides are chart values set over the suite's defaults, by top-level key.
	installOverrides map[string]any
	// report runs last, after the cluster is down, with the exit code so far.
	report func(code int)
}
