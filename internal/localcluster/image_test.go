package localcluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ProjectImage lays the image out as the Dockerfile does: the same binaries in
// /usr/local/bin, the same user and entrypoint.
func TestProjectImageMatchesTheDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	img := ProjectImage("localhost/ke:test", "test")
	var user, copied string
	var entrypoint []string
	for _, line := range strings.Split(string(data), "\n") {
		switch f := strings.Fields(line); {
		case len(f) == 2 && f[0] == "USER":
			user = f[1]
		case len(f) > 1 && f[0] == "ENTRYPOINT":
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "ENTRYPOINT")), &entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT %q: %v", line, err)
			}
		case len(f) > 2 && f[0] == "COPY" && f[len(f)-1] == "/usr/local/bin/":
			copied = line
		}
	}
	if user != img.User {
		t.Errorf("Dockerfile USER %q, ProjectImage %q", user, img.User)
	}
	if !slices.Equal(entrypoint, img.Entrypoint) {
		t.Errorf("Dockerfile ENTRYPOINT %q, ProjectImage %q", entrypoint, img.Entrypoint)
	}
	var names []string
	for _, b := range img.Binaries {
		names = append(names, b.Name)
		if !strings.Contains(copied, "/"+b.Name+" ") {
			t.Errorf("the Dockerfile copies no %s into /usr/local/bin: %q", b.Name, copied)
		}
	}
	if strings.Count(copied, "/out/") != len(names) {
		t.Errorf("the Dockerfile copies %q, ProjectImage has %v", copied, names)
	}
}
