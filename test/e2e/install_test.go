//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localcluster"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localinstall"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/release"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// e2eChartVersion is the version of the chart the suite packages and installs.
const e2eChartVersion = "0.0.0-e2e"

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

// installChart installs the chart as a release ships it, packaged by make release's
// code (internal/release WriteChart) into a .tgz, with the Helm SDK and the values
// this machine needs (internal/localinstall), and waits until the webhook mutates pods.
func installChart(ctx context.Context) error {
	dist, err := os.MkdirTemp("", "ke-e2e-dist-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dist)
	packaged, err := release.WriteChart(release.ChartOptions{
		Repo: cluster.Repo(), Dir: dist, Version: e2eChartVersion, Epoch: time.Unix(0, 0),
	})
	if err != nil {
		return err
	}
	in, err := localinstall.Install(ctx, localinstall.Options{
		Repo:          cluster.Repo(),
		Chart:         filepath.Join(dist, filepath.FromSlash(packaged)),
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
