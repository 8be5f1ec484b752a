package server_test

import (
	"flag"
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook/server"
)

// The gate-mode flags reach pkg/inject's configuration.
func TestInjectConfigGateFlags(t *testing.T) {
	tests := []struct {
		args                  []string
		controller, gateAllNS bool
	}{
		{args: nil, controller: true},
		{args: []string{"--controller=false"}},
		{args: []string{"--gate-all-namespaces"}, controller: true, gateAllNS: true},
		{args: []string{"--controller=false", "--gate-all-namespaces"}, gateAllNS: true},
	}
	for _, tt := range tests {
		o := server.DefaultOptions()
		fs := flag.NewFlagSet("entrypoint-webhook", flag.ContinueOnError)
		o.BindFlags(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.InjectConfig()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Controller != tt.controller || cfg.GateAllNamespaces != tt.gateAllNS || cfg.NamespaceGated {
			t.Errorf("%q: Controller %v, GateAllNamespaces %v, NamespaceGated %v; want %v, %v, false",
				tt.args, cfg.Controller, cfg.GateAllNamespaces, cfg.NamespaceGated, tt.controller, tt.gateAllNS)
		}
	}
}
