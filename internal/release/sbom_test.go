package release

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"testing"
)

// Each image gets a CycloneDX SBOM of its binary's modules; two runs write the
// same bytes. The binaries are the images' own (TestImagesAreReproducible shows a
// fresh link gives the same bytes).
func TestWriteSBOMs(t *testing.T) {
	o := SBOMOptions{ImageOptions: testOptions(t.TempDir())}
	o.Platforms = testPlatforms[:1]
	o.Binaries = mustBuild(t).bins
	first, err := WriteSBOMs(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	o2 := o
	o2.Dir = t.TempDir()
	second, err := WriteSBOMs(context.Background(), o2)
	if err != nil {
		t.Fatal(err)
	}
	// A dependency each binary links, and one the resolver must not.
	wantModule := map[string]string{ResolverImage: "k8s.io/client-go", WebhookImage: "sigs.k8s.io/controller-runtime"}
	for i, spec := range Images() {
		a, err := os.ReadFile(first[i])
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(second[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two runs wrote different SBOMs", spec.Name)
		}
		var bom struct {
			BOMFormat    string `json:"bomFormat"`
			SerialNumber string `json:"serialNumber"`
			Metadata     struct {
				Timestamp string `json:"timestamp"`
				Component struct {
					Name, Version string
				} `json:"component"`
			} `json:"metadata"`
			Components []struct{ Name, Version string } `json:"components"`
		}
		if err := json.Unmarshal(a, &bom); err != nil {
			t.Fatalf("%s: %v", first[i], err)
		}
		if bom.BOMFormat != "CycloneDX" || bom.Metadata.Timestamp != "" ||
			!regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(bom.SerialNumber) {
			t.Errorf("%s: format %q, timestamp %q, serial %q", spec.Name, bom.BOMFormat, bom.Metadata.Timestamp, bom.SerialNumber)
		}
		if c := bom.Metadata.Component; c.Name != "github.com/kubernetes-entrypoint/kubernetes-entrypoint" || c.Version != o.Version {
			t.Errorf("%s: main component %s@%s", spec.Name, c.Name, c.Version)
		}
		var names []string
		for _, c := range bom.Components {
			names = append(names, c.Name)
		}
		if !slices.Contains(names, wantModule[spec.Name]) {
			t.Errorf("%s: no %s among %v", spec.Name, wantModule[spec.Name], names)
		}
		if spec.Name == ResolverImage && slices.Contains(names, "sigs.k8s.io/controller-runtime") {
			t.Errorf("the resolver's SBOM lists controller-runtime, which it does not link")
		}
	}
}

func TestSerial(t *testing.T) {
	a := serial("x", "v1", []byte("bin"))
	for _, other := range []string{serial("y", "v1", []byte("bin")), serial("x", "v2", []byte("bin")), serial("x", "v1", []byte("bin2"))} {
		if other == a {
			t.Errorf("serial %s for different inputs", a)
		}
	}
	if serial("x", "v1", []byte("bin")) != a {
		t.Errorf("serial is not a function of its inputs")
	}
}
