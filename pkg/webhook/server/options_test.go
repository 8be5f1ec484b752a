package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/imageconfig"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook/server"
)

// The registry flags reach pkg/imageconfig's options, and bad values are errors
// at start that name the flag.
func TestRegistryFlags(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	ca := testCA(t)
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		want    imageconfig.Options
		wantCA  bool
		wantErr []string
	}{
		{name: "defaults", want: imageconfig.Options{
			Timeout: 3 * time.Second, MaxManifestBytes: imageconfig.DefaultMaxManifestBytes,
			MaxConfigBytes: imageconfig.DefaultMaxConfigBytes, MaxInFlight: imageconfig.DefaultMaxInFlight,
		}},
		{name: "every flag", args: []string{
			"--registry-timeout=2s", "--registry-insecure=registry.local:5000, 10.0.0.1 ,", "--registry-ca-file=" + caFile,
			"--registry-max-manifest-bytes=4096", "--registry-max-config-bytes=8192", "--registry-max-in-flight=3",
		}, want: imageconfig.Options{
			Timeout: 2 * time.Second, MaxManifestBytes: 4096, MaxConfigBytes: 8192, MaxInFlight: 3,
			InsecureRegistries: []string{"registry.local:5000", "10.0.0.1"},
		}, wantCA: true},
		{name: "bad values", args: []string{
			"--registry-max-manifest-bytes=0", "--registry-max-config-bytes=-1", "--registry-max-in-flight=0",
			"--registry-insecure=http://registry.local", "--registry-timeout=0s",
		}, wantErr: []string{"--registry-max-manifest-bytes=0", "--registry-max-config-bytes=-1", "--registry-max-in-flight=0",
			`--registry-insecure: "http://registry.local"`, "--registry-timeout=0s"}},
		{name: "missing CA file", args: []string{"--registry-ca-file=" + filepath.Join(dir, "nope.pem")}, wantErr: []string{"--registry-ca-file", "nope.pem"}},
		{name: "CA file without PEM", args: []string{"--registry-ca-file=" + notPEM}, wantErr: []string{"--registry-ca-file=" + notPEM, "no PEM certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := server.DefaultOptions()
			fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
			o.BindFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			got, err := o.ImageConfigOptions()
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error for %v", tc.args)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got.RootCAs != nil) != tc.wantCA {
				t.Errorf("RootCAs set: %v, want %v", got.RootCAs != nil, tc.wantCA)
			}
			if tc.wantCA {
				if _, err := ca.Verify(x509.VerifyOptions{Roots: got.RootCAs}); err != nil {
					t.Errorf("the CA of --registry-ca-file is not trusted: %v", err)
				}
			}
			got.RootCAs = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("options %+v, want %+v", got, tc.want)
			}
		})
	}
}

// testCA is a self-signed CA certificate.
func testCA(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "registry CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
