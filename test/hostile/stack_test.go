package hostile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/imageconfig"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook"
)

// newWebhook is the webhook's handler stack as the server registers it, with the
// real registry lookup (default limits); registry, when set, is reached over
// plain HTTP.
func newWebhook(registry string) http.Handler {
	opts := imageconfig.Options{}
	if registry != "" {
		opts.InsecureRegistries = []string{registry}
	}
	return &admission.Webhook{Handler: &webhook.PodInjector{
		Config:  inject.Config{Image: "registry.example/kubernetes-entrypoint:1", ImageConfig: imageconfig.New(opts)},
		Decoder: admission.NewDecoder(clientgoscheme.Scheme),
		Log:     logr.Discard(),
	}}
}

// serve sends body to wh as the API server would, and returns the response body
// and how long the handler took.
func serve(wh http.Handler, body []byte) ([]byte, time.Duration) {
	req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, webhook.Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	start := time.Now()
	wh.ServeHTTP(rec, req)
	return rec.Body.Bytes(), time.Since(start)
}

// hugeRepo is the repository of the image whose config is hugeConfigSize bytes.
const (
	hugeRepo       = "huge"
	hugeConfigSize = 256 << 20
)

// hugeConfig streams an image config of hugeConfigSize bytes: a valid config
// whose history comment is padded with 'x'.
func hugeConfig() io.Reader {
	prefix := `{"architecture":"` + runtime.GOARCH + `","os":"linux","config":{"Entrypoint":["/app"]},"history":[{"comment":"`
	suffix := `"}],"rootfs":{"type":"layers","diff_ids":[]}}`
	padding := io.LimitReader(repeatByte('x'), int64(hugeConfigSize-len(prefix)-len(suffix)))
	return io.MultiReader(strings.NewReader(prefix), padding, strings.NewReader(suffix))
}

// repeatByte reads as an endless run of one byte.
type repeatByte byte

func (r repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// hugeBlobs serves the huge config as the registry's only blob, generated on each
// read.
type hugeBlobs struct{ digest v1.Hash }

func (h hugeBlobs) Get(_ context.Context, _ string, d v1.Hash) (io.ReadCloser, error) {
	if d != h.digest {
		return nil, registry.ErrNotFound
	}
	return io.NopCloser(hugeConfig()), nil
}

func (h hugeBlobs) Stat(_ context.Context, _ string, d v1.Hash) (int64, error) {
	if d != h.digest {
		return 0, registry.ErrNotFound
	}
	return hugeConfigSize, nil
}

// startHugeRegistry serves hugeRepo:1, an image whose manifest declares (and
// whose registry serves) the huge config, on 127.0.0.1; it returns host:port.
func startHugeRegistry(t testing.TB) string {
	t.Helper()
	sum := sha256.New()
	if _, err := io.Copy(sum, hugeConfig()); err != nil {
		t.Fatal(err)
	}
	digest := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum.Sum(nil))}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithBlobHandler(hugeBlobs{digest: digest})))
	t.Cleanup(srv.Close)

	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest.String(), "size": hugeConfigSize},
		"layers":        []any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPut, srv.URL+"/v2/"+hugeRepo+"/manifests/1", bytes.NewReader(manifest))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("pushing the manifest: %s: %s", resp.Status, body)
	}
	return strings.TrimPrefix(srv.URL, "http://")
}

// thousands writes n with commas between groups of three digits, as denials do.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
