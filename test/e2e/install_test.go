//go:build e2e

package e2e

import (
	"context"
	"os"
	"strconv"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localcluster"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localinstall"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// webhookNamespace is where the suite installs the chart (localinstall's default).
const webhookNamespace = "kubernetes-entrypoint"

// injectionMode is how the suite's webhook injects the resolver: E2E_INJECTION_MODE,
// init-container by default (make e2e runs the suite once in each mode).
var injectionMode = func() inject.InjectionMode {
	if m := os.Getenv("E2E_INJECTION_MODE"); m != "" {
		return inject.InjectionMode(m)
	}
	return inject.ModeInitContainer
}()

// installChart installs charts/kubernetes-entrypoint with the Helm SDK, with the values
// this machine needs (internal/localinstall), and waits until the webhook mutates pods.
func installChart(ctx context.Context) error {
	in, err := localinstall.Install(ctx, localinstall.Options{
		Repo:          cluster.Repo(),
		Kubeconfig:    cluster.KubeconfigPath(),
		Image:         webhookImage,
		ResolverImage: resolverImage,
		APIServerHost: suite.webhookAPIServerHost,
		APIServerPort: localcluster.APIServerPort,
		// For containers without a command: the test registry on loopback.
		RegistryLookup: true,
		LogLevel:       "debug",
		// The injected init container asks for 10m of CPU by default, which stops this
		// 2-core node at 200 pods: the scale benchmark runs 300.
		Overrides: merged(map[string]any{"injection": map[string]any{
			"mode": string(injectionMode),
			"resources": map[string]any{
				"requests": map[string]any{"cpu": "1m", "memory": "16Mi"},
			},
		}}, suite.installOverrides),
		Logf: cluster.Logf,
	})
	if err != nil {
		return err
	}
	resolverClusterRole = in.ResolverClusterRole
	return nil
}

// merged is base with the top-level keys of over set (over's maps replace base's).
func merged(base, over map[string]any) map[string]any {
	for k, v := range over {
		base[k] = v
	}
	return base
}

func apiServerEnv() map[string]string {
	return map[string]string{
		"KUBERNETES_SERVICE_HOST": "127.0.0.1",
		"KUBERNETES_SERVICE_PORT": strconv.Itoa(localcluster.APIServerPort),
	}
}
