package install

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
)

// The chart README's PrometheusRule example parses, alerts on pods gated too long
// and on dependency cycles with the controller's own condition reason, and names only
// metrics the controller defines; the README's WAITING-FOR column reads the
// controller's condition type.
func TestChartReadmeAlerts(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Groups []struct {
				Rules []struct {
					Alert string `json:"alert"`
					Expr  string `json:"expr"`
					For   string `json:"for"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(block[1], "kind: PrometheusRule") {
			if err := yaml.Unmarshal([]byte(block[1]), &rule); err != nil {
				t.Fatalf("the README's PrometheusRule is not YAML: %v\n%s", err, block[1])
			}
		}
	}
	if rule.Kind != "PrometheusRule" || rule.APIVersion != "monitoring.coreos.com/v1" || len(rule.Spec.Groups) == 0 {
		t.Fatalf("the chart README has no PrometheusRule (monitoring.coreos.com/v1) with rule groups: %+v", rule)
	}
	exprs := map[string]string{}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			exprs[r.Alert] = r.Expr
			if r.For == "" {
				t.Errorf("alert %s fires on one scrape: give it a for", r.Alert)
			}
		}
	}
	for alert, want := range map[string][]string{
		"EntrypointPodGatedTooLong": {"entrypoint_controller_gated_pod_oldest_seconds", "> 900"},
		"EntrypointDependencyCycle": {`entrypoint_controller_pods{reason="` + api.ReasonCycle + `"}`, "> 0"},
	} {
		for _, w := range want {
			if !strings.Contains(exprs[alert], w) {
				t.Errorf("alert %s: expr %q lacks %q", alert, exprs[alert], w)
			}
		}
	}

	defined := map[string]bool{}
	sources, err := filepath.Glob(filepath.Join(repoRoot, "pkg", "controller", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`"(entrypoint_controller_[a-z_]+)"`)
	for _, f := range sources {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllStringSubmatch(string(src), -1) {
			defined[m[1]] = true
		}
	}
	if len(defined) == 0 {
		t.Fatal("found no metric entrypoint_controller_* in pkg/controller")
	}
	var unknown []string
	for _, m := range regexp.MustCompile(`entrypoint_controller_[a-z_]+`).FindAllString(string(readme), -1) {
		if !defined[m] {
			unknown = append(unknown, m)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("the chart README names metrics pkg/controller does not define: %v (defined: %v)", unknown, defined)
	}
	for m := range defined {
		if !strings.Contains(string(readme), "`"+m) {
			t.Errorf("the chart README does not document the metric %s", m)
		}
	}

	column := `.status.conditions[?(@.type=="` + string(api.ConditionType) + `")].message`
	if !strings.Contains(string(readme), column) {
		t.Errorf("the chart README's WAITING-FOR column does not read %s", column)
	}
}
