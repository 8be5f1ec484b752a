package release

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// syntheticArchives are three platforms' archives with made-up digests.
func syntheticArchives() []PluginArchive {
	return []PluginArchive{
		{OSArch{"linux", "amd64"}, "plugin/kubectl-entrypoint_1.2.3_linux_amd64.tar.gz", strings.Repeat("a", 64), "kubectl-entrypoint"},
		{OSArch{"darwin", "arm64"}, "plugin/kubectl-entrypoint_1.2.3_darwin_arm64.tar.gz", strings.Repeat("b", 64), "kubectl-entrypoint"},
		{OSArch{"windows", "amd64"}, "plugin/kubectl-entrypoint_1.2.3_windows_amd64.zip", strings.Repeat("c", 64), "kubectl-entrypoint.exe"},
	}
}

func readTemplate(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../plugins/entrypoint.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKrewManifest: the manifest made from plugins/entrypoint.yaml keeps its
// descriptions, takes the release's version, and has one platform per archive with
// its sha256, its URL from the template, its bin and LICENSE among its files.
func TestKrewManifest(t *testing.T) {
	tmpl := readTemplate(t)
	src, err := ParseKrewPlugin(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, urlTemplate string
		wantURI           []string
	}{
		{"default URL", "", []string{
			"https://github.com/kubernetes-entrypoint/kubernetes-entrypoint/releases/download/v1.2.3/kubectl-entrypoint_1.2.3_linux_amd64.tar.gz",
			"https://github.com/kubernetes-entrypoint/kubernetes-entrypoint/releases/download/v1.2.3/kubectl-entrypoint_1.2.3_darwin_arm64.tar.gz",
			"https://github.com/kubernetes-entrypoint/kubernetes-entrypoint/releases/download/v1.2.3/kubectl-entrypoint_1.2.3_windows_amd64.zip",
		}},
		{"mirror", "https://mirror.example/ke/{version}/files/{archive}", []string{
			"https://mirror.example/ke/1.2.3/files/kubectl-entrypoint_1.2.3_linux_amd64.tar.gz",
			"https://mirror.example/ke/1.2.3/files/kubectl-entrypoint_1.2.3_darwin_arm64.tar.gz",
			"https://mirror.example/ke/1.2.3/files/kubectl-entrypoint_1.2.3_windows_amd64.zip",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			archives := syntheticArchives()
			b, err := KrewManifest(KrewOptions{Template: tmpl, Version: "1.2.3", URLTemplate: tc.urlTemplate, Archives: archives})
			if err != nil {
				t.Fatal(err)
			}
			p, err := ParseKrewPlugin(b)
			if err != nil {
				t.Fatalf("the written manifest does not parse: %v\n%s", err, b)
			}
			if errs := ValidateKrewPlugin(p, "entrypoint"); len(errs) > 0 {
				t.Errorf("the written manifest is invalid: %v", errs)
			}
			if p.Spec.Version != "v1.2.3" || p.Metadata.Name != "entrypoint" || p.Spec.Description != src.Spec.Description ||
				p.Spec.ShortDescription != src.Spec.ShortDescription || p.Spec.Homepage != src.Spec.Homepage {
				t.Errorf("version %q, name %q, descriptions or homepage not the template's", p.Spec.Version, p.Metadata.Name)
			}
			var uris []string
			for i, pl := range p.Spec.Platforms {
				a := archives[i]
				uris = append(uris, pl.URI)
				if pl.SHA256 != a.SHA256 || pl.Bin != a.Bin ||
					pl.Selector.MatchLabels["os"] != a.Platform.OS || pl.Selector.MatchLabels["arch"] != a.Platform.Arch {
					t.Errorf("platform %d: %+v, want archive %+v", i, pl, a)
				}
				if !slices.Equal(pl.Files, []KrewFile{{a.Bin, "."}, {"LICENSE", "."}}) {
					t.Errorf("platform %d: files %v", i, pl.Files)
				}
			}
			if !slices.Equal(uris, tc.wantURI) {
				t.Errorf("uris:\n got %q\nwant %q", uris, tc.wantURI)
			}
		})
	}
}

func TestKrewManifestRefuses(t *testing.T) {
	tmpl := readTemplate(t)
	for _, tc := range []struct {
		name string
		o    KrewOptions
		want string
	}{
		{"no {archive} in the URL", KrewOptions{Template: tmpl, Version: "1.2.3", URLTemplate: "https://x/{version}/plugin.tgz", Archives: syntheticArchives()}, "no {archive}"},
		{"unknown field in the template", KrewOptions{Template: append(slices.Clone(tmpl), "\nhomepage: x\n"...), Version: "1.2.3", Archives: syntheticArchives()}, "field homepage not found"},
		{"no archive", KrewOptions{Template: tmpl, Version: "1.2.3"}, "spec.platforms: Required"},
		{"not semver", KrewOptions{Template: tmpl, Version: "1.2", Archives: syntheticArchives()}, "spec.version"},
		{"two archives for one platform", KrewOptions{Template: tmpl, Version: "1.2.3", Archives: append(syntheticArchives(), syntheticArchives()[0])}, "spec.platforms[3].selector: Duplicate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := KrewManifest(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestValidateKrewPlugin: each of krew's rules, broken once in a valid manifest,
// is reported at its field.
func TestValidateKrewPlugin(t *testing.T) {
	valid := func() KrewPlugin {
		return KrewPlugin{
			APIVersion: KrewAPIVersion, Kind: KrewKind, Metadata: KrewMetadata{Name: "entrypoint"},
			Spec: KrewSpec{
				Version: "v1.2.3", Homepage: "https://example.com", ShortDescription: "short",
				Platforms: []KrewPlatform{{
					Selector: KrewSelector{MatchLabels: map[string]string{"os": "linux", "arch": "amd64"}},
					URI:      "https://example.com/a.tar.gz", SHA256: strings.Repeat("0", 64), Bin: "kubectl-entrypoint",
				}},
			},
		}
	}
	if errs := ValidateKrewPlugin(valid(), "entrypoint"); len(errs) > 0 {
		t.Fatalf("the valid manifest: %v", errs)
	}
	for _, tc := range []struct {
		name   string
		breaks func(*KrewPlugin)
		field  string
	}{
		{"apiVersion", func(p *KrewPlugin) { p.APIVersion = "krew.googlecontainertools.github.com/v1alpha1" }, "apiVersion"},
		{"kind", func(p *KrewPlugin) { p.Kind = "Index" }, "kind"},
		{"unsafe name", func(p *KrewPlugin) { p.Metadata.Name = "entry/point" }, "metadata.name"},
		{"name not the file's", func(p *KrewPlugin) { p.Metadata.Name = "entry" }, "metadata.name"},
		{"no short description", func(p *KrewPlugin) { p.Spec.ShortDescription = "" }, "spec.shortDescription"},
		{"two-line short description", func(p *KrewPlugin) { p.Spec.ShortDescription = "a\nb" }, "spec.shortDescription"},
		{"version without v", func(p *KrewPlugin) { p.Spec.Version = "1.2.3" }, "spec.version"},
		{"no platforms", func(p *KrewPlugin) { p.Spec.Platforms = nil }, "spec.platforms"},
		{"no uri", func(p *KrewPlugin) { p.Spec.Platforms[0].URI = "" }, "spec.platforms[0].uri"},
		{"ftp uri", func(p *KrewPlugin) { p.Spec.Platforms[0].URI = "ftp://example.com/a" }, "spec.platforms[0].uri"},
		{"uppercase sha256", func(p *KrewPlugin) { p.Spec.Platforms[0].SHA256 = strings.Repeat("A", 64) }, "spec.platforms[0].sha256"},
		{"short sha256", func(p *KrewPlugin) { p.Spec.Platforms[0].SHA256 = "abc" }, "spec.platforms[0].sha256"},
		{"no bin", func(p *KrewPlugin) { p.Spec.Platforms[0].Bin = "" }, "spec.platforms[0].bin"},
		{"empty files", func(p *KrewPlugin) { p.Spec.Platforms[0].Files = []KrewFile{} }, "spec.platforms[0].files"},
		{"file without to", func(p *KrewPlugin) { p.Spec.Platforms[0].Files = []KrewFile{{From: "x"}} }, "spec.platforms[0].files[0]"},
		{"empty selector", func(p *KrewPlugin) { p.Spec.Platforms[0].Selector.MatchLabels = nil }, "spec.platforms[0].selector.matchLabels"},
		{"selector key", func(p *KrewPlugin) { p.Spec.Platforms[0].Selector.MatchLabels["distro"] = "debian" }, "spec.platforms[0].selector.matchLabels[distro]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := valid()
			tc.breaks(&p)
			errs := ValidateKrewPlugin(p, "entrypoint")
			if len(errs) != 1 || errs[0].Field != tc.field {
				t.Errorf("errors %v, want one at %s", errs, tc.field)
			}
		})
	}
}
