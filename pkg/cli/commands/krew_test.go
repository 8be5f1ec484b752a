package commands

import (
	"os"
	"regexp"
	"slices"
	"testing"

	sigsyaml "sigs.k8s.io/yaml"
)

// krewPlugin is the part of krew's Plugin (v1alpha2) that krew checks on install.
type krewPlugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		Homepage         string `json:"homepage"`
		ShortDescription string `json:"shortDescription"`
		Description      string `json:"description"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
			Files  []struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"files"`
		} `json:"platforms"`
	} `json:"spec"`
}

// TestKrewManifest: plugins/entrypoint.yaml is a krew Plugin with no unknown
// field, for linux/amd64 and linux/arm64, each platform's bin among its files.
func TestKrewManifest(t *testing.T) {
	b, err := os.ReadFile("../../../plugins/entrypoint.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var p krewPlugin
	if err := sigsyaml.UnmarshalStrict(b, &p); err != nil {
		t.Fatalf("plugins/entrypoint.yaml: %v", err)
	}
	if p.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || p.Kind != "Plugin" || p.Metadata.Name != "entrypoint" {
		t.Errorf("apiVersion %q, kind %q, name %q", p.APIVersion, p.Kind, p.Metadata.Name)
	}
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(p.Spec.Version) || p.Spec.ShortDescription == "" || p.Spec.Homepage == "" {
		t.Errorf("spec: version %q, shortDescription %q, homepage %q", p.Spec.Version, p.Spec.ShortDescription, p.Spec.Homepage)
	}
	var arches []string
	for _, pl := range p.Spec.Platforms {
		arches = append(arches, pl.Selector.MatchLabels["os"]+"/"+pl.Selector.MatchLabels["arch"])
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(pl.SHA256) || !regexp.MustCompile(`^https://`).MatchString(pl.URI) {
			t.Errorf("platform %v: uri %q, sha256 %q", pl.Selector.MatchLabels, pl.URI, pl.SHA256)
		}
		found := false
		for _, f := range pl.Files {
			found = found || f.From == pl.Bin
		}
		if pl.Bin != "kubectl-entrypoint" || !found {
			t.Errorf("platform %v: bin %q is not among its files", pl.Selector.MatchLabels, pl.Bin)
		}
	}
	if !slices.Equal(arches, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %v, want linux/amd64 and linux/arm64", arches)
	}
}
