package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// The release every test renders, unless it says otherwise.
const (
	releaseName      = "kubernetes-entrypoint"
	releaseNamespace = "kubernetes-entrypoint"
	kubeVersion      = "v1.37.2"
)

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	return ch
}

func capabilities(t testing.TB) *chartutil.Capabilities {
	t.Helper()
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	return caps
}

// rendered is one `helm template`: the manifests in install order, and NOTES.txt.
type rendered struct {
	Manifest string
	Notes    string
}

// render renders the chart as `helm template <release> charts/kubernetes-entrypoint
// -n <namespace> -f <values>` does: values checked against values.schema.json,
// manifests sorted in Helm's install order, each headed by its source.
func render(t testing.TB, namespace string, values map[string]any) (rendered, error) {
	t.Helper()
	ch := loadChart(t)
	caps := capabilities(t)
	if err := chartutil.ProcessDependenciesWithMerge(ch, values); err != nil {
		return rendered{}, err
	}
	top, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{
		Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true,
	}, caps)
	if err != nil {
		return rendered{}, err
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		return rendered{}, err
	}
	var out rendered
	for name, content := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			out.Notes = content
			delete(files, name)
		}
	}
	_, manifests, err := releaseutil.SortManifests(files, caps.APIVersions, releaseutil.InstallOrder)
	if err != nil {
		return rendered{}, err
	}
	var b strings.Builder
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	out.Manifest = b.String()
	return out, nil
}

// mustRender renders or fails the test.
func mustRender(t testing.TB, namespace string, values map[string]any) rendered {
	t.Helper()
	r, err := render(t, namespace, values)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	return r
}

// readValues reads testdata/values/<name>.yaml.
func readValues(t testing.TB, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "values", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{}
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatalf("values %s: %v", name, err)
	}
	return values
}

// parseObjects splits a YAML stream into objects, skipping empty documents.
func parseObjects(t testing.TB, stream string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewBufferString(stream), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("parsing manifests: %v\n%s", err, stream)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// find returns the only object of kind, or fails.
func find(t testing.TB, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s, found %d", kind, len(found))
	}
	return found[0]
}
