package inject

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.yaml from what Mutate returns now")

// TestGolden mutates every testdata/<case>.in.yaml, with the config of
// <case>.config.yaml when there is one, and compares the result with
// <case>.out.yaml. For each case it also checks that the input was not modified and
// that mutating the result again changes nothing.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs in testdata (err %v)", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			pod := readPod(t, in)
			before := pod.DeepCopy()
			cfg := goldenConfig(t, name)

			got, outcome, err := Mutate(context.Background(), pod, cfg)
			if err != nil {
				t.Fatalf("Mutate: %v", err)
			}
			if outcome.Result != ResultInjected || outcome.Reason != ReasonInjected {
				t.Fatalf("outcome %+v, want injected", outcome)
			}
			if !reflect.DeepEqual(pod, before) {
				t.Fatal("Mutate modified its input pod")
			}

			compareGolden(t, filepath.Join("testdata", name+".out.yaml"), got)

			again, outcome, err := Mutate(context.Background(), got, cfg)
			if err != nil || outcome.Result != ResultSkipped || outcome.Reason != ReasonAlreadyInjected {
				t.Fatalf("second Mutate: outcome %+v, err %v; want skipped already-injected", outcome, err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Fatal("Mutate(Mutate(pod)) differs from Mutate(pod)")
			}
		})
	}
}

// lineDiff returns the first few lines where want and got differ, or "".
func lineDiff(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 8; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			shown++
		}
	}
	return b.String()
}

// compareGolden compares got, as YAML, with the golden file outFile, which
// go test -update rewrites.
func compareGolden(t *testing.T, outFile string, got *corev1.Pod) {
	t.Helper()
	b, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(outFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := lineDiff(string(want), string(b)); diff != "" {
		t.Errorf("%s differs (go test -update rewrites it):\n%s", outFile, diff)
	}
}
