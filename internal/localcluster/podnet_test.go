package localcluster

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// HostOnPodNetwork changes exactly what it documents: the host's address on the bridge
// and the API server's service resolution; pods never get a default route.
func TestHostOnPodNetwork(t *testing.T) {
	for _, tc := range []struct {
		name        string
		on          bool
		wantGateway bool
		wantFlag    string
	}{
		{"off (e2e, demo, bench-scale)", false, false, "--enable-aggregator-routing=false"},
		{"on (fault scenarios)", true, true, "--enable-aggregator-routing=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Options{Dir: t.TempDir(), Repo: t.TempDir(), BinDir: t.TempDir(), HostOnPodNetwork: tc.on})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := c.cniConfig()
			if err != nil {
				t.Fatal(err)
			}
			var conf struct {
				Plugins []map[string]any `json:"plugins"`
			}
			if err := json.Unmarshal(raw, &conf); err != nil {
				t.Fatal(err)
			}
			bridge := conf.Plugins[0]
			if bridge["isGateway"] != tc.wantGateway || bridge["isDefaultGateway"] != false || bridge["ipMasq"] != false {
				t.Errorf("bridge isGateway=%v isDefaultGateway=%v ipMasq=%v, want %v false false:\n%s",
					bridge["isGateway"], bridge["isDefaultGateway"], bridge["ipMasq"], tc.wantGateway, raw)
			}
			if args := c.apiserver(nil).args; !slices.Contains(args, tc.wantFlag) {
				t.Errorf("kube-apiserver flags lack %s: %v", tc.wantFlag, args)
			}
		})
	}
}

// A stopped component comes back with the flags Start gave it; unknown names are refused.
func TestComponentByName(t *testing.T) {
	c, err := New(Options{Dir: t.TempDir(), Repo: t.TempDir(), BinDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.componentByName("kube-proxy"); err == nil {
		t.Error("componentByName(kube-proxy): no error")
	}
	if err := c.writePKI(); err != nil {
		t.Fatal(err)
	}
	for _, name := range allComponents {
		p, err := c.componentByName(name)
		if err != nil {
			t.Errorf("componentByName(%s): %v", name, err)
			continue
		}
		if p.name != name || p.ready == nil {
			t.Errorf("componentByName(%s) = %q (ready check set: %v)", name, p.name, p.ready != nil)
		}
	}

	// A cluster started with HostOnPodNetwork by another process keeps its flags.
	if err := os.WriteFile(c.Path(podNetworkMarker), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := c.componentByName("kube-apiserver")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(p.args, "--enable-aggregator-routing=true") {
		t.Errorf("restarted with %v, want --enable-aggregator-routing=true as Start gave it", p.args)
	}
}
