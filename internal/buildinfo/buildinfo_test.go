package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFormat(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "tool v1\n" + runtime.Version() + " " + platform + "\n"},
		{
			"main modules in their order, others and absent ones left out, replacements followed",
			&debug.BuildInfo{GoVersion: "go1.99.1", Deps: []*debug.Module{
				{Path: "sigs.k8s.io/controller-runtime", Version: "v0.25.2"},
				{Path: "github.com/spf13/cobra", Version: "v1.10.2"},
				{Path: "k8s.io/client-go", Version: "v0.37.2"},
				{Path: "k8s.io/api", Version: "v0.37.0", Replace: &debug.Module{Path: "../api", Version: "v0.37.1"}},
			}},
			"tool v1\ngo1.99.1 " + platform + "\nk8s.io/api v0.37.1\nk8s.io/client-go v0.37.2\nsigs.k8s.io/controller-runtime v0.25.2\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := format("tool", "v1", tc.info); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// The test binary has build info: the first lines are the name and the toolchain.
func TestText(t *testing.T) {
	want := "x v2\n" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if got := Text("x", "v2"); len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("Text = %q, want it to start with %q", got, want)
	}
}
