//go:build e2e

package e2e

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localcluster"
)

// A shell-less image and containers without a command: the webhook reads ENTRYPOINT
// and CMD from the image's registry (here, in this process on loopback, over HTTPS)
// and combines them as Kubernetes does: args, when set, replace CMD.
func TestArgvFromTheImageConfig(t *testing.T) {
	defer noPanic(t)
	ns := namespace(t, "e2e-image")
	ctx := context.Background()
	const fromCmd, fromArgs = "argv from the image config", "args replace CMD"

	ref := reg.host + "/ke-e2e-shellless:v1"
	img, _, err := cluster.BuildImage(ctx, localcluster.Image{
		Ref:        ref,
		Binaries:   []localcluster.Binary{{Name: "testapp", Package: "./test/e2e/testapp"}},
		Entrypoint: []string{testapp},
		Cmd:        []string{"print", fromCmd},
		User:       "65532:65532",
	})
	must(t, err)
	tag, err := name.NewTag(ref)
	must(t, err)
	must(t, remote.Write(tag, img, remote.WithTransport(reg.transport), remote.WithContext(ctx)))
	must(t, cluster.ImportV1Image(ref, img)) // the kubelet does not pull: imagePullPolicy Never

	plain := container("plain")
	plain.Image, plain.Command, plain.Args = ref, nil, nil
	withArgs := container("with-args", "print", fromArgs)
	withArgs.Image, withArgs.Command = ref, nil
	app := appDeployment("shellless", map[string]string{
		// The API server on loopback: a dependency that is ready at once.
		"entrypoint.io/dependency-tcp": "127.0.0.1:" + strconv.Itoa(localcluster.APIServerPort),
	}, plain, withArgs)
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, app, metav1.CreateOptions{})
	must(t, err)

	want := map[string][]string{
		"plain":     {"--", testapp, "print", fromCmd},
		"with-args": {"--", testapp, "print", fromArgs},
	}
	var podName string
	eventually(t, "the pod exists", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := onlyPod(ctx, ns, "shellless")
		if p != nil {
			podName = p.Name
			for _, c := range p.Spec.Containers {
				argv := append(slices.Clone(c.Command), c.Args...)
				if w := want[c.Name]; len(argv) < len(w) || !slices.Equal(argv[len(argv)-len(w):], w) || !strings.HasSuffix(argv[0], "/kubernetes-entrypoint") {
					t.Fatalf("container %s: argv %q, want the resolver then %q", c.Name, argv, w)
				}
			}
		}
		return p != nil, err
	})
	for c, out := range map[string]string{"plain": fromCmd, "with-args": fromArgs} {
		eventually(t, "the output of "+c, time.Minute, func(ctx context.Context) (bool, error) {
			return strings.Contains(podLogs(ctx, ns, podName, c), out+" (pid 1,"), nil
		})
	}
}
