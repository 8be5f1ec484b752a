package spec

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// renderedInit is one init container as an openstack-helm chart renders it.
type renderedInit struct {
	Chart string                     `json:"chart"`
	Kind  string                     `json:"kind"`
	Name  string                     `json:"name"`
	Env   map[string]json.RawMessage `json:"env"`
}

// installedBase reads the 47 environments real charts give the original image, each
// resolved as the kubelet would for a pod of that workload in namespace openstack.
func installedBase(t *testing.T) map[string][]map[string]string {
	t.Helper()
	data, err := os.ReadFile("testdata/openstack-helm-init-env.json")
	if err != nil {
		t.Fatal(err)
	}
	var inits []renderedInit
	if err := json.Unmarshal(data, &inits); err != nil {
		t.Fatal(err)
	}
	if len(inits) != 47 {
		t.Fatalf("fixture holds %d environments, want 47", len(inits))
	}
	envs := map[string][]map[string]string{}
	for _, in := range inits {
		env := map[string]string{}
		for name, raw := range in.Env {
			var literal string
			if json.Unmarshal(raw, &literal) == nil {
				env[name] = literal
				continue
			}
			var ref struct {
				FieldRef string `json:"fieldRef"`
			}
			if err := json.Unmarshal(raw, &ref); err != nil {
				t.Fatalf("%s %s: %s is neither a value nor a fieldRef: %s", in.Kind, in.Name, name, raw)
			}
			switch ref.FieldRef {
			case "metadata.name":
				env[name] = in.Name + "-abc12"
			case "metadata.namespace":
				env[name] = "openstack"
			default:
				t.Fatalf("%s %s: %s has fieldRef %q, which this test does not resolve", in.Kind, in.Name, name, ref.FieldRef)
			}
		}
		// Two charts render a workload of the same name (a Job and a CronJob).
		envs[in.Name] = append(envs[in.Name], env)
	}
	return envs
}

func TestInstalledBaseParses(t *testing.T) {
	count := 0
	for name, envs := range installedBase(t) {
		for _, env := range envs {
			count++
			s, err := FromEnv(lookupIn(env))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			checkSpec(t, s)
			if s.Namespace != "openstack" || s.PodName != name+"-abc12" || s.Command != nil {
				t.Errorf("%s: namespace %q, pod %q, command %q", name, s.Namespace, s.PodName, s.Command)
			}
			counts := []struct {
				what      string
				got, want int
			}{
				{"services", len(s.Services), listItems(env[EnvServices])},
				{"jobs", len(s.Jobs), jobItems(t, env)},
				{"daemonsets", len(s.DaemonSets), listItems(env[EnvDaemonSets])},
				{"containers", len(s.Containers), listItems(env[EnvContainers])},
				{"pods", len(s.Pods), jsonItems(t, env[EnvPodsJSON])},
				{"custom resources", len(s.CustomResources), jsonItems(t, env[EnvCustomResources])},
			}
			for _, c := range counts {
				if c.got != c.want {
					t.Errorf("%s: %d %s parsed, %d in the environment", name, c.got, c.what, c.want)
				}
			}
		}
	}
	if count != 47 {
		t.Errorf("parsed %d environments, want 47", count)
	}
}

func TestInstalledBaseSpotChecks(t *testing.T) {
	base := installedBase(t)
	parse := func(name string) *Spec {
		t.Helper()
		s, err := FromEnv(lookupIn(base[name][0]))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return s
	}
	const ns = "openstack"

	keystone := parse("keystone-api")
	want := &Spec{
		Namespace: ns, PodName: "keystone-api-abc12", InterfaceName: "eth0",
		Services: []ObjectRef{{Namespace: ns, Name: "memcached"}, {Namespace: ns, Name: "mariadb"}},
		Jobs: []JobRef{
			{Namespace: ns, Name: "keystone-db-sync"},
			{Namespace: ns, Name: "keystone-credential-setup"},
			{Namespace: ns, Name: "keystone-fernet-setup"},
		},
	}
	if !reflect.DeepEqual(keystone, want) {
		t.Errorf("keystone-api =\n%#v\nwant\n%#v", keystone, want)
	}

	ovs := map[string]string{"application": "neutron", "component": "neutron-ovs-agent"}
	libvirt := map[string]string{"application": "libvirt", "component": "libvirt"}
	wantPods := []PodRef{
		{Namespace: ns, Labels: libvirt, RequireSameNode: true},
		{Namespace: ns, Labels: ovs, RequireSameNode: true},
	}
	if got := parse("nova-compute-default").Pods; !reflect.DeepEqual(got, wantPods) {
		t.Errorf("nova-compute-default pods = %+v, want %+v", got, wantPods)
	}

	wantResources := []CustomResourceRef{{
		APIVersion: "mariadb.osh.openstack.org/v1alpha1", Kind: "Connection",
		Namespace: ns, Name: "nova-cell0-db-conn",
		Conditions: []ConditionMatch{{Type: "Ready", Status: "True"}},
	}}
	if got := parse("nova-db-sync").CustomResources; !reflect.DeepEqual(got, wantResources) {
		t.Errorf("nova-db-sync custom resources = %+v, want %+v", got, wantResources)
	}

	if got := parse("swift-proxy").DaemonSets; !reflect.DeepEqual(got, []ObjectRef{{Namespace: ns, Name: "swift-storage"}}) {
		t.Errorf("swift-proxy daemonsets = %+v", got)
	}
}

// listItems counts the distinct items of a comma-separated value.
func listItems(value string) int {
	distinct := map[string]bool{}
	for item := range strings.SplitSeq(value, ",") {
		if item = strings.TrimSpace(item); item != "" {
			distinct[item] = true
		}
	}
	return len(distinct)
}

func jsonItems(t *testing.T, value string) int {
	t.Helper()
	if strings.TrimSpace(value) == "" {
		return 0
	}
	var items []json.RawMessage
	if err := json.Unmarshal([]byte(value), &items); err != nil {
		t.Fatalf("%q: %v", value, err)
	}
	return len(items)
}

// jobItems counts jobs as the original does: the JSON variable wins when set.
func jobItems(t *testing.T, env map[string]string) int {
	if strings.TrimSpace(env[EnvJobsJSON]) != "" {
		return jsonItems(t, env[EnvJobsJSON])
	}
	return listItems(env[EnvJobs])
}

// Every environment of the installed base is well within the caps of a pod's
// dependencies, which the webhook and the dependency controller hold pods to; the
// largest is the one limits.go names.
func TestInstalledBaseWithinLimits(t *testing.T) {
	var most Counts
	count := 0
	for name, envs := range installedBase(t) {
		for _, env := range envs {
			count++
			s, err := FromEnv(lookupIn(env))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if err := CheckLimits(s); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			c := Count(s)
			most.Items, most.Selectors = max(most.Items, c.Items), max(most.Selectors, c.Selectors)
		}
	}
	if count != 47 {
		t.Errorf("checked %d environments, want 47", count)
	}
	if most.Items != 9 || most.Selectors != 2 {
		t.Errorf("at most %d items and %d selecting by labels, want 9 and 2", most.Items, most.Selectors)
	}
}
