package install

import (
	"path/filepath"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizeBuild is `kustomize build dir`.
func kustomizeBuild(t testing.TB, dir string) string {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := resources.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestGoldenKustomize(t *testing.T) {
	for _, dir := range []string{"default", "self-signed"} {
		golden(t, "kustomize-"+dir+".yaml", "# kustomize build config/"+dir+"\n"+kustomizeBuild(t, filepath.Join(repoRoot, "config", dir)))
	}
}
