package install

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"sigs.k8s.io/yaml"
)

// `helm lint charts/kubernetes-entrypoint`, through Helm's Go SDK, for the defaults
// and every combination: no error and no warning.
func TestHelmLint(t *testing.T) {
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range combinations {
		t.Run(name, func(t *testing.T) {
			linter := lint.AllWithKubeVersion(chartDir, readValues(t, name), releaseNamespace, kv)
			for _, m := range linter.Messages {
				t.Logf("%s", m)
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				}
			}
		})
	}
}

// values.schema.json and the templates' own checks refuse bad values with a
// message that names them.
func TestChartRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values string
		want   string
	}{
		{"unknown TLS mode", "tls: {mode: openssl}", "tls/mode"},
		{"unknown failurePolicy", "webhook: {failurePolicy: Maybe}", "failurePolicy"},
		{"timeout above the API server's limit", "webhook: {timeoutSeconds: 31}", "timeoutSeconds"},
		{"webhook URL over plain HTTP", "webhook: {url: 'http://127.0.0.1:9443/mutate-v1-pod'}", "webhook/url"},
		{"misspelt key", "webhook: {failurepolicy: Ignore}", "failurepolicy"},
		{"bad quantity", "injection: {resources: {requests: {cpu: lots}}}", "cpu"},
		{"bad duration", "registryLookup: {timeout: 3}", "timeout"},
		{"both PDB bounds", "podDisruptionBudget: {minAvailable: 1, maxUnavailable: 1}", "exactly one of minAvailable and maxUnavailable"},
		{"existing ServiceAccount without a name", "serviceAccount: {create: false}", "serviceAccount.name is required"},
		{"ServiceAccount subject without namespace", "resolverRBAC: {clusterRoleBindingSubjects: [{name: app}]}", "needs a namespace"},
		{"resolver binding without namespace", "resolverRBAC: {roleBindings: [{serviceAccounts: [app]}]}", "namespace"},
		{"extra argument that is not a flag", "webhook: {extraArgs: [debug]}", "extraArgs"},
		{"pull-secret namespace that is not a DNS label", "registryLookup: {pullSecretNamespaces: [Team_A]}", "pullSecretNamespaces"},
		{"insecure registry with a scheme", "registryLookup: {insecureRegistries: ['http://registry.local']}", "insecureRegistries"},
		{"CA bundle that is not PEM", "registryLookup: {caBundle: 'MIIB...'}", "caBundle"},
		{"no lookup at a time", "registryLookup: {maxInFlight: 0}", "maxInFlight"},
		{"manifest limit of no bytes", "registryLookup: {maxManifestBytes: 0}", "maxManifestBytes"},
		{"negative drain", "webhook: {drainSeconds: -1}", "drainSeconds"},
		{"gate mode everywhere without the controller", "controller: {enabled: false, gateAllNamespaces: true}", "controller.gateAllNamespaces=true needs controller.enabled=true"},
		{"adoption everywhere without the controller", "controller: {enabled: false}\nwebhook: {adoptAllNamespaces: true}", "webhook.adoptAllNamespaces=true needs controller.enabled=true"},
		{"adoption everywhere that is not a bool", "webhook: {adoptAllNamespaces: 'yes'}", "adoptAllNamespaces"},
		{"custom-resource rule with its own verbs", "controller: {customResourceRules: [{apiGroups: [example.com], resources: [databases], verbs: [delete]}]}", "verbs"},
		{"custom-resource rule mixing every resource and names", "controller: {customResourceRules: [{apiGroups: [example.com], resources: ['*', databases]}]}", "customResourceRules"},
		{"custom-resource rule on every group", "controller: {customResourceRules: [{apiGroups: ['*'], resources: [databases]}]}", "customResourceRules"},
		{"custom-resource rule on a subresource", "controller: {customResourceRules: [{apiGroups: [example.com], resources: [databases/status]}]}", "customResourceRules"},
		{"controller replicas without leader election", "controller: {replicaCount: 2, leaderElect: false}", "controller.replicaCount above 1 needs controller.leaderElect=true"},
		{"no controller replica", "controller: {replicaCount: 0}", "replicaCount"},
		{"existing controller ServiceAccount without a name", "controller: {serviceAccount: {create: false}}", "controller.serviceAccount.name is required"},
		{"controller extra argument that is not a flag", "controller: {extraArgs: [debug]}", "extraArgs"},
		{"custom-resource rule on the core group", "controller: {customResourceRules: [{apiGroups: [''], resources: [secrets]}]}", "customResourceRules"},
		{"custom-resource rule without resources", "controller: {customResourceRules: [{apiGroups: [example.com]}]}", "resources"},
		{"no API rate", "controller: {kubeAPIQPS: 0}", "kubeAPIQPS"},
		{"API burst that is not a number", "controller: {kubeAPIBurst: lots}", "kubeAPIBurst"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			values := map[string]any{}
			if err := yaml.Unmarshal([]byte(tc.values), &values); err != nil {
				t.Fatal(err)
			}
			_, err := render(t, releaseNamespace, values)
			if err == nil {
				t.Fatalf("values %s were accepted", tc.values)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// The chart's README documents every value of values.yaml, by its dotted path.
func TestChartReadmeDocumentsEveryValue(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{}
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, found := strings.Cut(string(readme), "\n## Values\n")
	if !found {
		t.Fatal("charts/kubernetes-entrypoint/README.md has no \"## Values\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}
	var missing []string
	for _, path := range valuePaths("", values) {
		if !documented[path] {
			missing = append(missing, path)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("charts/kubernetes-entrypoint/README.md has no table row for: %s", strings.Join(missing, ", "))
	}
	for path := range documented {
		if !hasPath(values, path) {
			t.Errorf("the README documents %q, which values.yaml does not have", path)
		}
	}
}

// valuePaths lists the leaves of values as dotted paths; maps that are empty by
// default (free-form, such as nodeSelector entries) and lists count as leaves, and
// so do the maps of resources and security contexts, which are documented whole.
func valuePaths(prefix string, values map[string]any) []string {
	var out []string
	for k, v := range values {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		m, ok := v.(map[string]any)
		if !ok || len(m) == 0 || wholeValue[path] {
			out = append(out, path)
			continue
		}
		out = append(out, valuePaths(path, m)...)
	}
	return out
}

var wholeValue = map[string]bool{
	"resources": true, "injection.resources": true, "controller.resources": true, "podSecurityContext": true, "securityContext": true, "nodeSelector": true,
}

func hasPath(values map[string]any, path string) bool {
	var cur any = values
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}
