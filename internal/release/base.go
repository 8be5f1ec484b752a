package release

import (
	"archive/zip"
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The base's users, as in distroless: root, nobody, and nonroot, the one the images
// run as.
const (
	NonRootUID = 65532
	// ImageUser is the images' config User.
	ImageUser = "65532:65532"
)

const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"nobody:x:65534:\n" +
		"nonroot:x:65532:\n"
	// Go's resolver reads it: files before DNS, as glibc does by default.
	nsswitch = "hosts: files dns\n"
	// CABundlePath is where Go's crypto/x509 (and most TLS stacks) look first on Linux.
	CABundlePath = "/etc/ssl/certs/ca-certificates.crt"
	zoneinfoDir  = "/usr/share/zoneinfo"
)

// osRelease names the base for what it is: not Debian, not distroless.
func osRelease(source string) string {
	return `NAME="kubernetes-entrypoint static base"
ID=kubernetes-entrypoint-static
PRETTY_NAME="kubernetes-entrypoint static base (equivalent of distroless static, built by internal/release)"
HOME_URL="` + source + `"
`
}

// baseFiles is the distroless-static equivalent every image starts from: users and
// groups, their homes, /tmp, nsswitch.conf, os-release, the CA bundle and the time
// zone database. Everything comes from pinned inputs: constants here, the module
// golang.org/x/crypto/x509roots/fallback (go.mod) and Go's zoneinfo.zip (the Go
// version), so the layer's digest depends on nothing else.
func baseFiles(source, goroot string) (*tree, error) {
	t := newTree()
	t.dir("/root", 0o700, 0)
	t.dir("/home/nonroot", 0o700, NonRootUID)
	t.dir("/tmp", 0o1777, 0)
	t.dir("/usr/local/bin", 0o755, 0)
	t.file("/etc/passwd", 0o644, []byte(passwd))
	t.file("/etc/group", 0o644, []byte(group))
	t.file("/etc/nsswitch.conf", 0o644, []byte(nsswitch))
	t.file("/etc/os-release", 0o644, []byte(osRelease(source)))
	t.file(CABundlePath, 0o644, CABundle())
	zones, err := zoneinfo(goroot)
	if err != nil {
		return nil, err
	}
	for name, data := range zones {
		t.file(zoneinfoDir+"/"+name, 0o644, data)
	}
	return t, nil
}

// CABundle is the PEM bundle of the roots in golang.org/x/crypto/x509roots/fallback
// (Mozilla's NSS trust store), in the module's order. Roots that NSS trusts only
// with a constraint (a distrust-after date) are left out: a PEM file cannot carry
// the constraint, and trusting them without it would trust more than NSS does.
func CABundle() []byte {
	var b bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
	}
	return b.Bytes()
}

// zoneinfo is the time zone database of the Go toolchain that builds the binaries,
// $GOROOT/lib/time/zoneinfo.zip, unpacked: name → TZif data.
func zoneinfo(goroot string) (map[string][]byte, error) {
	file := filepath.Join(goroot, "lib", "time", "zoneinfo.zip")
	zr, err := zip.OpenReader(file)
	if err != nil {
		return nil, fmt.Errorf("the time zone database of the Go toolchain: %w", err)
	}
	defer zr.Close()
	zones := map[string][]byte{}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") || strings.Contains(f.Name, "..") || strings.HasPrefix(f.Name, "/") {
			continue
		}
		r, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, f.Name, err)
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, f.Name, err)
		}
		zones[f.Name] = data
	}
	if len(zones) == 0 {
		return nil, fmt.Errorf("%s holds no time zones", file)
	}
	return zones, nil
}
