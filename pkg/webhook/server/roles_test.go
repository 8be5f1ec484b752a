package server

import (
	"flag"
	"strings"
	"testing"
)

// checkRoles accepts the ways the process is run (the webhook and the controller
// together, the webhook told of a separate controller, the controller alone, the
// webhook without any) and refuses the combinations that make no sense, naming
// the flags.
func TestCheckRoles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr []string // substrings; none: accepted
	}{
		{name: "webhook and controller in one process"},
		{name: "webhook with a separate controller", args: []string{"--controller=false", "--controller-separate"}},
		{name: "webhook with a separate controller, gate mode everywhere", args: []string{"--controller=false", "--controller-separate", "--gate-all-namespaces"}},
		{name: "controller alone", args: []string{"--webhook=false"}},
		{name: "webhook without a controller", args: []string{"--controller=false"}},
		{name: "nothing to run", args: []string{"--webhook=false", "--controller=false"}, wantErr: []string{"nothing to run"}},
		{name: "separate controller told to a process without the webhook", args: []string{"--webhook=false", "--controller-separate"},
			wantErr: []string{"--controller-separate with --webhook=false"}},
		{name: "separate controller and the controller here too", args: []string{"--controller-separate"},
			wantErr: []string{"--controller-separate with --controller", "--controller=false"}},
		{name: "gate mode everywhere without any controller", args: []string{"--controller=false", "--gate-all-namespaces"},
			wantErr: []string{"--gate-all-namespaces needs --controller or --controller-separate"}},
		{name: "adoption everywhere without any controller", args: []string{"--controller=false", "--adopt-all-namespaces"},
			wantErr: []string{"--adopt-all-namespaces needs --controller or --controller-separate"}},
		{name: "adoption everywhere with a separate controller", args: []string{"--controller=false", "--controller-separate", "--adopt-all-namespaces"}},
		{name: "leader election without a namespace", args: []string{"--namespace="},
			wantErr: []string{"leader election needs"}},
		{name: "a shorter Lease", args: []string{"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms"}},
		{name: "a renew deadline not shorter than the Lease", args: []string{"--leader-elect-lease-duration=5s", "--leader-elect-renew-deadline=5s"},
			wantErr: []string{"--leader-elect-lease-duration=5s --leader-elect-renew-deadline=5s", "want lease duration > renew deadline > retry period > 0"}},
		{name: "no retry period", args: []string{"--leader-elect-retry-period=0s"}, wantErr: []string{"retry period > 0"}},
		{name: "Lease timings unused without leader election", args: []string{"--leader-elect=false", "--leader-elect-retry-period=0s"}},
		{name: "no namespace needed by a webhook with a separate controller", args: []string{"--namespace=", "--controller=false", "--controller-separate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			o.Namespace = "entrypoint"
			fs := flag.NewFlagSet("entrypoint-webhook", flag.ContinueOnError)
			o.BindFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := o.checkRoles()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("%q refused: %v", tc.args, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%q accepted", tc.args)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
