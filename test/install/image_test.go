package install

import (
	"bytes"
	"debug/elf"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/release"
)

// The binaries `make build` builds; the images hold one each (but the plugin).
var imageBinaries = []string{"kubernetes-entrypoint", "entrypoint-webhook", "kubectl-entrypoint"}

const (
	imageBase    = "gcr.io/distroless/static-debian12:nonroot"
	imageBinDir  = "/usr/local/bin/"
	testVersion  = "v0.0.0-install-test"
	buildTarget  = "build"
	ociLabelBase = "org.opencontainers.image."
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, COPY...
	Args string
}

type stage struct {
	Image, Name  string
	Args         map[string]string // ARG defaults
	Instructions []instruction
}

// parseDockerfile reads the Dockerfile's stages; enough of the syntax for ours
// (comments, continuation lines, ARG, FROM ... AS ...).
func parseDockerfile(t testing.TB, file string) []*stage {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var stages []*stage
	global := map[string]string{}
	var logical []string
	cur := ""
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		logical = append(logical, cur+trimmed)
		cur = ""
	}
	for _, l := range logical {
		cmd, args, _ := strings.Cut(l, " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		switch {
		case in.Cmd == "FROM":
			fields := strings.Fields(in.Args)
			fields = slices.DeleteFunc(fields, func(f string) bool { return strings.HasPrefix(f, "--platform=") })
			s := &stage{Image: expand(fields[0], global), Args: map[string]string{}}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.Name = fields[2]
			}
			stages = append(stages, s)
		case in.Cmd == "ARG":
			name, def, _ := strings.Cut(in.Args, "=")
			if len(stages) == 0 {
				global[name] = def
			} else {
				stages[len(stages)-1].Args[name] = def
			}
		case len(stages) == 0:
			t.Fatalf("Dockerfile: %s before the first FROM", in.Cmd)
		default:
			s := stages[len(stages)-1]
			s.Instructions = append(s.Instructions, in)
		}
	}
	return stages
}

// expand substitutes ${NAME} and $NAME from vars.
func expand(s string, vars map[string]string) string {
	return os.Expand(s, func(name string) string { return vars[name] })
}

func (s *stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// buildCommand is the builder stage's RUN that builds the binaries, without its
// --mount flags.
func buildCommand(t testing.TB, s *stage) string {
	t.Helper()
	var found []string
	for _, in := range s.all("RUN") {
		cmd := in.Args
		for strings.HasPrefix(cmd, "--") {
			_, cmd, _ = strings.Cut(cmd, " ")
			cmd = strings.TrimSpace(cmd)
		}
		if strings.Contains(cmd, "make ") || strings.Contains(cmd, "go build") {
			found = append(found, cmd)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one RUN that builds the binaries in stage %q, found %q", s.Name, found)
	}
	return found[0]
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	images := release.Images()
	if len(stages) != 1+len(images) {
		t.Fatalf("want a builder and a stage for each of the %d images, got %d stages", len(images), len(stages))
	}
	builder := stages[0]
	var outDir string
	// Each image's stage is named after it (docker build --target NAME) and holds
	// its binary alone, as internal/release lays the image out.
	for i, spec := range images {
		final := stages[1+i]
		if final.Name != spec.Name {
			t.Errorf("stage %d is %q, want %q (the image's name, for --target)", 1+i, final.Name, spec.Name)
		}
		if final.Image != imageBase {
			t.Errorf("%s: base image %q, want %q", spec.Name, final.Image, imageBase)
		}
		if users := final.all("USER"); len(users) != 1 || users[0].Args != release.ImageUser {
			t.Errorf("%s: USER %v, want %s (distroless nonroot)", spec.Name, users, release.ImageUser)
		}
		if ep := final.all("ENTRYPOINT"); len(ep) != 1 || ep[0].Args != `["`+imageBinDir+spec.Name+`"]` {
			t.Errorf("%s: ENTRYPOINT %v, want its binary in exec form", spec.Name, ep)
		}
		labels := map[string]string{}
		for _, l := range final.all("LABEL") {
			for _, m := range regexp.MustCompile(`([\w.-]+)="([^"]*)"`).FindAllStringSubmatch(l.Args, -1) {
				labels[m[1]] = m[2]
			}
		}
		for _, key := range []string{"source", "version", "revision", "title", "description", "licenses"} {
			if labels[ociLabelBase+key] == "" {
				t.Errorf("%s: no LABEL %s%s", spec.Name, ociLabelBase, key)
			}
		}
		if labels[ociLabelBase+"title"] != spec.Name || labels[ociLabelBase+"description"] != spec.Description {
			t.Errorf("%s: title %q and description %q differ from internal/release's", spec.Name, labels[ociLabelBase+"title"], labels[ociLabelBase+"description"])
		}
		if labels[ociLabelBase+"version"] != "${VERSION}" || final.Args["VERSION"] == "" {
			t.Errorf("%s: the version label must come from ARG VERSION, got %q", spec.Name, labels[ociLabelBase+"version"])
		}
		copies := final.all("COPY")
		if len(copies) != 1 {
			t.Fatalf("%s: want one COPY, got %v", spec.Name, copies)
		}
		fields := strings.Fields(copies[0].Args)
		if len(fields) != 3 || fields[0] != "--from="+builder.Name || path.Base(fields[1]) != spec.Name || fields[2] != imageBinDir {
			t.Fatalf("%s: COPY %q: want --from=%s <out>/%s %s", spec.Name, copies[0].Args, builder.Name, spec.Name, imageBinDir)
		}
		outDir = path.Dir(fields[1])
	}

	// The builder runs the make target with the version and the output directory.
	cmd := buildCommand(t, builder)
	for _, want := range []string{"make " + buildTarget + " ", "VERSION=${VERSION}", "BIN=" + outDir, "GOOS=${TARGETOS}", "GOARCH=${TARGETARCH}"} {
		if !strings.Contains(cmd+" ", want) {
			t.Errorf("the builder's RUN %q lacks %q", cmd, want)
		}
	}
	if builder.Args["VERSION"] == "" {
		t.Errorf("the builder has no ARG VERSION default")
	}

	// That target builds each binary static, trimmed, stripped and version-stamped.
	out, err := exec.Command("make", "-s", "-C", repoRoot, "-n", buildTarget, "VERSION="+testVersion, "BIN="+outDir).CombinedOutput()
	if err != nil {
		t.Fatalf("make -n %s: %v\n%s", buildTarget, err, out)
	}
	built := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		for _, want := range []string{"CGO_ENABLED=0 ", " -trimpath ", ` -ldflags "-s -w -X main.version=` + testVersion + `" `, " -buildvcs=false "} {
			if !strings.Contains(line, want) {
				t.Errorf("make %s runs %q, which lacks %q", buildTarget, line, strings.TrimSpace(want))
			}
		}
		m := regexp.MustCompile(`-o (\S+) (\./cmd/\S+)$`).FindStringSubmatch(line)
		if m == nil || path.Dir(m[1]) != outDir {
			t.Errorf("make %s runs %q: want -o %s/<binary> ./cmd/<package>", buildTarget, line, outDir)
			continue
		}
		built[path.Base(m[1])] = m[2]
	}
	want := map[string]string{"kubernetes-entrypoint": "./cmd/entrypoint", "entrypoint-webhook": "./cmd/webhook", "kubectl-entrypoint": "./cmd/kubectl-entrypoint"}
	if !maps.Equal(built, want) {
		t.Errorf("make %s builds %v, want %v", buildTarget, built, want)
	}
}

// The Dockerfile's build command, run as Docker would (in a copy of the build
// context that .dockerignore leaves, so without .git), and `make build` in the
// checkout produce the same bytes; the binaries are static, stripped and stamped.
func TestImageBinariesMatchMake(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries twice")
	}
	stages := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	builder := stages[0]
	cmd := buildCommand(t, builder)

	tmp := t.TempDir()
	context := filepath.Join(tmp, "context")
	copyBuildContext(t, repoRoot, context)
	if _, err := os.Stat(filepath.Join(context, ".git")); err == nil {
		t.Fatal(".dockerignore lets .git into the build context")
	}
	dockerOut := filepath.Join(tmp, "docker-out")
	cmd = regexp.MustCompile(`BIN=/out\b`).ReplaceAllString(cmd, "BIN="+dockerOut)
	run := exec.Command("bash", "-euo", "pipefail", "-c", cmd)
	run.Dir = context
	run.Env = buildEnv(map[string]string{"VERSION": testVersion, "TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH})
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build command %q: %v\n%s", cmd, err, out)
	}

	makeOut := makeBinaries(t)
	for _, name := range imageBinaries {
		a, err := os.ReadFile(filepath.Join(dockerOut, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(makeOut, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the Dockerfile's build (%d bytes) and `make %s` (%d bytes) differ", name, len(a), buildTarget, len(b))
		}
		assertStaticStripped(t, filepath.Join(makeOut, name))
	}
	for name, args := range map[string][]string{"kubernetes-entrypoint": {"version"}, "entrypoint-webhook": {"--version"}, "kubectl-entrypoint": {"--version"}} {
		out, err := exec.Command(filepath.Join(makeOut, name), args...).CombinedOutput()
		first, rest, _ := strings.Cut(string(out), "\n")
		if err != nil || first != name+" "+testVersion || !strings.HasPrefix(rest, runtime.Version()+" ") || !strings.Contains(rest, "\nk8s.io/client-go v") {
			t.Errorf("%s %v printed %q (%v), want %q, the Go version and the main modules' versions", name, args, out, err, name+" "+testVersion)
		}
	}
}

// assertStaticStripped: no program interpreter, no shared library, no symbol table.
func assertStaticStripped(t *testing.T, file string) {
	t.Helper()
	f, err := elf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked (%s segment)", file, p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) != 0 {
		t.Errorf("%s needs shared libraries %v (%v)", file, libs, err)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s is not stripped: it has a .symtab", file)
	}
}

var (
	makeOnce sync.Once
	makeDir  string
	makeErr  string
)

// makeBinaries runs `make build` once per test binary into a temporary directory
// and returns it; the webhook test runs the entrypoint-webhook built here.
func makeBinaries(t *testing.T) string {
	t.Helper()
	makeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ke-make-build-")
		if err != nil {
			makeErr = err.Error()
			return
		}
		cmd := exec.Command("make", "-s", "-C", repoRoot, buildTarget, "VERSION="+testVersion, "BIN="+dir)
		cmd.Env = buildEnv(nil)
		if out, err := cmd.CombinedOutput(); err != nil {
			makeErr = "make " + buildTarget + ": " + err.Error() + "\n" + string(out)
			return
		}
		makeDir = dir
	})
	if makeErr != "" {
		t.Fatal(makeErr)
	}
	return makeDir
}

// buildEnv is the environment of a build: this process's, without GOFLAGS (the
// golang image sets none), plus extra.
func buildEnv(extra map[string]string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOFLAGS=") })
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// copyBuildContext copies src to dst, leaving out what .dockerignore excludes. It
// understands the patterns our .dockerignore uses: paths relative to the context
// root with filepath.Match wildcards, and a leading "**/" for any depth.
func copyBuildContext(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(src, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: exceptions (%q) are not supported by this test", line)
		}
		patterns = append(patterns, strings.TrimSuffix(strings.TrimPrefix(line, "/"), "/"))
	}
	ignored := func(rel string) bool {
		for _, p := range patterns {
			if anyDepth, ok := strings.CutPrefix(p, "**/"); ok {
				for _, part := range strings.Split(rel, "/") {
					if m, _ := path.Match(anyDepth, part); m {
						return true
					}
				}
				continue
			}
			if m, _ := path.Match(p, rel); m {
				return true
			}
		}
		return false
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		if rel != "." && ignored(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
