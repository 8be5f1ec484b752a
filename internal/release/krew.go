package release

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The krew Plugin manifest (krew.googlecontainertools.github.com/v1alpha2), the
// fields krew reads.
const (
	KrewAPIVersion = "krew.googlecontainertools.github.com/v1alpha2"
	KrewKind       = "Plugin"
	// KrewManifestPath is the manifest in a release directory; krew takes the
	// plugin's name from the file's.
	KrewManifestPath = "krew/entrypoint.yaml"
	// DefaultReleaseURL is where a release's files are downloaded from: {version}
	// is x.y.z, {archive} an archive's file name.
	DefaultReleaseURL = "https://github.com/kubernetes-entrypoint/kubernetes-entrypoint/releases/download/v{version}/{archive}"
)

// KrewPlugin is a krew plugin manifest.
type KrewPlugin struct {
	APIVersion string       `yaml:"apiVersion"`
	Kind       string       `yaml:"kind"`
	Metadata   KrewMetadata `yaml:"metadata"`
	Spec       KrewSpec     `yaml:"spec"`
}

// KrewMetadata names the plugin.
type KrewMetadata struct {
	Name string `yaml:"name"`
}

// KrewSpec is what krew shows and installs.
type KrewSpec struct {
	Version          string         `yaml:"version"`
	Homepage         string         `yaml:"homepage"`
	ShortDescription string         `yaml:"shortDescription"`
	Description      string         `yaml:"description"`
	Platforms        []KrewPlatform `yaml:"platforms"`
}

// KrewPlatform is one archive and the platforms it is for.
type KrewPlatform struct {
	Selector KrewSelector `yaml:"selector"`
	URI      string       `yaml:"uri"`
	SHA256   string       `yaml:"sha256"`
	Bin      string       `yaml:"bin"`
	Files    []KrewFile   `yaml:"files,omitempty"`
}

// KrewSelector selects platforms by the labels os and arch.
type KrewSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// KrewFile is copied from the archive into the plugin's directory.
type KrewFile struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// KrewOptions describe a release's krew manifest.
type KrewOptions struct {
	// Template is plugins/entrypoint.yaml: the name, homepage and descriptions
	// come from it, the version and platforms from the release.
	Template []byte
	Version  string // x.y.z
	// URLTemplate is where the archives are downloaded from, with {version} and
	// {archive}; DefaultReleaseURL when empty.
	URLTemplate string
	Archives    []PluginArchive
}

// ParseKrewPlugin reads a manifest, refusing unknown fields (krew ignores them: a
// misspelt one would be lost silently).
func ParseKrewPlugin(b []byte) (KrewPlugin, error) {
	var p KrewPlugin
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return KrewPlugin{}, fmt.Errorf("krew manifest: %w", err)
	}
	return p, nil
}

// KrewManifest is the release's krew manifest: Template's description, the
// release's version, one platform per archive with its URL and sha256.
func KrewManifest(o KrewOptions) ([]byte, error) {
	p, err := ParseKrewPlugin(o.Template)
	if err != nil {
		return nil, fmt.Errorf("the template: %w", err)
	}
	urlTemplate := o.URLTemplate
	if urlTemplate == "" {
		urlTemplate = DefaultReleaseURL
	}
	if !strings.Contains(urlTemplate, "{archive}") {
		return nil, fmt.Errorf("release URL template %q: it has no {archive}", urlTemplate)
	}
	p.Spec.Version = "v" + o.Version
	p.Spec.Platforms = nil
	for _, a := range o.Archives {
		uri := strings.NewReplacer("{version}", o.Version, "{archive}", path.Base(a.Path)).Replace(urlTemplate)
		p.Spec.Platforms = append(p.Spec.Platforms, KrewPlatform{
			Selector: KrewSelector{MatchLabels: map[string]string{"os": a.Platform.OS, "arch": a.Platform.Arch}},
			URI:      uri,
			SHA256:   a.SHA256,
			Bin:      a.Bin,
			Files:    []KrewFile{{From: a.Bin, To: "."}, {From: "LICENSE", To: "."}},
		})
	}
	if errs := ValidateKrewPlugin(p, "entrypoint"); len(errs) > 0 {
		return nil, fmt.Errorf("the krew manifest of %s: %w", o.Version, errs.ToAggregate())
	}
	var buf bytes.Buffer
	buf.WriteString("# Written by make release (hack/release) from plugins/entrypoint.yaml: install with\n" +
		"# kubectl krew install --manifest=entrypoint.yaml [--archive=<the platform's archive>].\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteKrewManifest writes KrewManifest to dir/KrewManifestPath.
func WriteKrewManifest(dir string, o KrewOptions) error {
	b, err := KrewManifest(o)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, filepath.FromSlash(KrewManifestPath))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}

var (
	krewPluginName = regexp.MustCompile(`^[\w-]+$`)
	krewSHA256     = regexp.MustCompile(`^[a-f0-9]{64}$`)
	// krewVersion is krew's semver: v, then major.minor.patch, optional -pre and +build.
	krewVersion = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
)

// ValidateKrewPlugin checks what krew v0.4.3 checks before it installs a manifest
// (its validation package is internal to its module, so it is restated here), and
// that no two platforms select the same os/arch, as krew's index CI does. name is
// the manifest's file name without .yaml.
func ValidateKrewPlugin(p KrewPlugin, name string) field.ErrorList {
	var errs field.ErrorList
	if p.APIVersion != KrewAPIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), p.APIVersion, []string{KrewAPIVersion}))
	}
	if p.Kind != KrewKind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), p.Kind, []string{KrewKind}))
	}
	meta := field.NewPath("metadata", "name")
	switch {
	case !krewPluginName.MatchString(p.Metadata.Name):
		errs = append(errs, field.Invalid(meta, p.Metadata.Name, "must match "+krewPluginName.String()))
	case p.Metadata.Name != name:
		errs = append(errs, field.Invalid(meta, p.Metadata.Name, fmt.Sprintf("krew names the plugin after its file: want %q", name)))
	}
	spec := field.NewPath("spec")
	if p.Spec.ShortDescription == "" {
		errs = append(errs, field.Required(spec.Child("shortDescription"), ""))
	} else if strings.ContainsAny(p.Spec.ShortDescription, "\r\n") {
		errs = append(errs, field.Invalid(spec.Child("shortDescription"), p.Spec.ShortDescription, "one line"))
	}
	if !krewVersion.MatchString(p.Spec.Version) {
		errs = append(errs, field.Invalid(spec.Child("version"), p.Spec.Version, "must be a semantic version with a leading v, e.g. v1.2.3"))
	}
	if _, err := url.ParseRequestURI(p.Spec.Homepage); p.Spec.Homepage != "" && err != nil {
		errs = append(errs, field.Invalid(spec.Child("homepage"), p.Spec.Homepage, err.Error()))
	}
	platforms := spec.Child("platforms")
	if len(p.Spec.Platforms) == 0 {
		errs = append(errs, field.Required(platforms, "at least one"))
	}
	seen := map[string]int{}
	for i, pl := range p.Spec.Platforms {
		at := platforms.Index(i)
		if pl.URI == "" {
			errs = append(errs, field.Required(at.Child("uri"), ""))
		} else if u, err := url.Parse(pl.URI); err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file") {
			errs = append(errs, field.Invalid(at.Child("uri"), pl.URI, "must be an http(s) or file URL"))
		}
		if !krewSHA256.MatchString(pl.SHA256) {
			errs = append(errs, field.Invalid(at.Child("sha256"), pl.SHA256, "must be 64 lowercase hex digits"))
		}
		if pl.Bin == "" {
			errs = append(errs, field.Required(at.Child("bin"), ""))
		}
		if pl.Files != nil && len(pl.Files) == 0 {
			errs = append(errs, field.Invalid(at.Child("files"), "[]", "leave it out or list files"))
		}
		for j, f := range pl.Files {
			if f.From == "" || f.To == "" {
				errs = append(errs, field.Required(at.Child("files").Index(j), "from and to"))
			}
		}
		labels := pl.Selector.MatchLabels
		if len(labels) == 0 {
			errs = append(errs, field.Required(at.Child("selector", "matchLabels"), "os and arch"))
		}
		for k := range labels {
			if k != "os" && k != "arch" {
				errs = append(errs, field.NotSupported(at.Child("selector", "matchLabels").Key(k), k, []string{"os", "arch"}))
			}
		}
		key := labels["os"] + "/" + labels["arch"]
		if j, dup := seen[key]; dup && len(labels) > 0 {
			errs = append(errs, field.Duplicate(at.Child("selector"), fmt.Sprintf("%s, as platforms[%d]", key, j)))
		}
		seen[key] = i
	}
	return errs
}
