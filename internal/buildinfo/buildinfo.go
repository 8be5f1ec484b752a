// Package buildinfo is what the binaries print for --version: their name and
// version, the Go toolchain that built them, and the versions of the main
// modules they link, read from the build info Go embeds (runtime/debug).
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// mainModules are the dependencies worth naming when asked for a version: what
// decides the binaries' behaviour against a cluster. Those a binary does not
// link are left out.
var mainModules = []string{
	"k8s.io/api",
	"k8s.io/apimachinery",
	"k8s.io/client-go",
	"sigs.k8s.io/controller-runtime",
	"github.com/google/cel-go",
	"github.com/google/go-containerregistry",
	"helm.sh/helm/v3",
}

// Text is the version report of the running binary:
//
//	kubernetes-entrypoint v1.2.3
//	go1.26.8 linux/amd64
//	k8s.io/client-go v0.37.2
//	...
func Text(name, version string) string {
	info, _ := debug.ReadBuildInfo()
	return format(name, version, info)
}

func format(name, version string, info *debug.BuildInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", name, version)
	goVersion := runtime.Version()
	if info != nil && info.GoVersion != "" {
		goVersion = info.GoVersion
	}
	fmt.Fprintf(&b, "%s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	if info == nil {
		return b.String()
	}
	for _, path := range mainModules {
		for _, m := range info.Deps {
			if m.Path != path {
				continue
			}
			if m.Replace != nil {
				m = m.Replace
			}
			fmt.Fprintf(&b, "%s %s\n", path, m.Version)
		}
	}
	return b.String()
}
