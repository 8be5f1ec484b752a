package install

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// combinations are the chart's major value sets; each has testdata/values/<name>.yaml
// and its golden render testdata/<name>.yaml.
var combinations = []string{"default", "self-signed", "single-node", "issuer-ignore", "bindings", "resources", "one-process", "controller"}

// golden compares got with testdata/<file>, or rewrites it with -update.
func golden(t *testing.T, file, got string) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := firstDifference(string(want), got); diff != "" {
		t.Errorf("%s differs from the render; run `go test ./test/install/ -run Golden -update` if the change is intended:\n%s", path, diff)
	}
}

// firstDifference shows the first differing line of two texts with some context.
func firstDifference(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	line := func(lines []string, n int) string {
		if n < len(lines) {
			return lines[n]
		}
		return "<end>"
	}
	var b strings.Builder
	for n := max(0, i-3); n < i; n++ {
		b.WriteString("  " + w[n] + "\n")
	}
	b.WriteString("- " + line(w, i) + "\n+ " + line(g, i) + "\n")
	b.WriteString("(line " + strconv.Itoa(i+1) + "; golden has " + strconv.Itoa(len(w)) + " lines, render " + strconv.Itoa(len(g)) + ")")
	return b.String()
}

func TestGoldenChart(t *testing.T) {
	for _, name := range combinations {
		t.Run(name, func(t *testing.T) {
			r := mustRender(t, releaseNamespace, readValues(t, name))
			header := "# helm template " + releaseName + " charts/kubernetes-entrypoint -n " + releaseNamespace +
				" -f test/install/testdata/values/" + name + ".yaml\n"
			golden(t, name+".yaml", header+r.Manifest)
			if !strings.Contains(r.Notes, "entrypoint.io/dependency-service") {
				t.Errorf("NOTES.txt does not show how to annotate a workload:\n%s", r.Notes)
			}
			// Gate mode and the WAITING-FOR column only where the controller runs.
			enabled, found, _ := unstructured.NestedBool(readValues(t, name), "controller", "enabled")
			if shows := strings.Contains(r.Notes, "entrypoint.io/DependenciesReady"); shows != (enabled || !found) {
				t.Errorf("NOTES.txt shows gate mode and the controller's condition: %v, the controller runs: %v\n%s", shows, enabled || !found, r.Notes)
			}
			if mode, _, _ := unstructured.NestedString(readValues(t, name), "tls", "mode"); mode == "self-signed" && !strings.Contains(r.Notes, "entrypoint.io/rotate=") {
				t.Errorf("NOTES.txt does not show how to force a rotation of the self-signed CA:\n%s", r.Notes)
			}
		})
	}
}

// No template generates a certificate, a key or a random value, or renders a
// caBundle (cert-manager's cainjector or the webhook writes it) or Secret data: two
// renders are identical, so `helm upgrade` and GitOps tools see no change where
// there is none.
func TestChartGeneratesNoSecrets(t *testing.T) {
	templates, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		t.Fatal(err)
	}
	forbidden := regexp.MustCompile(`\{\{[^}]*\b(genCA|genSelfSignedCert|genSignedCert|genPrivateKey|genCAWithKey|genSelfSignedCertWithKey|genSignedCertWithKey|randAlpha|randAlphaNum|randNumeric|randAscii|randBytes|uuidv4|now|lookup)\b|caBundle:`)
	comment := regexp.MustCompile(`(?s)\{\{-?\s*/\*.*?\*/\s*-?\}\}`)
	for _, file := range templates {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		code := comment.ReplaceAll(data, nil)
		if m := forbidden.Find(code); m != nil {
			t.Errorf("%s uses %q", filepath.Base(file), m)
		}
	}
	for _, name := range combinations {
		values := readValues(t, name)
		first, second := mustRender(t, releaseNamespace, values), mustRender(t, releaseNamespace, values)
		if first.Manifest != second.Manifest {
			t.Errorf("%s: two renders differ", name)
		}
		for _, o := range parseObjects(t, first.Manifest) {
			if o.GetKind() != "Secret" {
				continue
			}
			// Self-signed mode renders the webhook's own Secret, empty: the webhook
			// fills it by update, and a manifest that never mentions data keeps an
			// upgrade (three-way merge) from blanking the certificate.
			mode, _, _ := unstructured.NestedString(values, "tls", "mode")
			if mode != "self-signed" || o.GetName() != releaseName+"-webhook-tls" {
				t.Errorf("%s renders the Secret %s", name, o.GetName())
			}
			for _, field := range []string{"data", "stringData", "immutable"} {
				if _, ok := o.Object[field]; ok {
					t.Errorf("%s renders %s in the Secret %s", name, field, o.GetName())
				}
			}
		}
		if strings.Contains(first.Manifest, "caBundle:") {
			t.Errorf("%s renders a caBundle", name)
		}
	}
}
