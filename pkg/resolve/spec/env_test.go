package spec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// lookupIn serves env like os.LookupEnv would.
func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

type goodCase struct {
	name string
	env  map[string]string
	want *Spec
}

func goodCases() []goodCase {
	os := "openstack"
	return []goodCase{
		{
			name: "nothing set",
			env:  map[string]string{},
			want: &Spec{Namespace: "default"},
		},
		{
			name: "everything present and empty or blank",
			env: map[string]string{
				EnvCommand: "", EnvNamespace: " ", EnvPodName: "", EnvNodeName: "", EnvInterfaceName: "",
				EnvServices: "", EnvJobs: " \t", EnvJobsJSON: "", EnvDaemonSets: "", EnvContainers: "",
				EnvPodsJSON: "", EnvCustomResources: "  ", EnvConfigs: "", EnvSockets: "", EnvTCP: "", EnvHTTP: "\n",
			},
			want: &Spec{Namespace: "default"},
		},
		{
			name: "keystone-api as helm-toolkit renders it",
			env: map[string]string{
				EnvNamespace: os, EnvPodName: "keystone-api-7d9f8-abc12", EnvInterfaceName: "eth0",
				EnvServices:   "openstack:memcached,openstack:mariadb",
				EnvJobs:       "keystone-db-sync,keystone-credential-setup,keystone-fernet-setup",
				EnvDaemonSets: "", EnvContainers: "", EnvPodsJSON: "", EnvCustomResources: "",
			},
			want: &Spec{
				Namespace: os, PodName: "keystone-api-7d9f8-abc12", InterfaceName: "eth0",
				Services: []ObjectRef{{Namespace: os, Name: "memcached"}, {Namespace: os, Name: "mariadb"}},
				Jobs: []JobRef{
					{Namespace: os, Name: "keystone-db-sync"},
					{Namespace: os, Name: "keystone-credential-setup"},
					{Namespace: os, Name: "keystone-fernet-setup"},
				},
			},
		},
		{
			name: "legacy command, blanks around items, default namespace, duplicates dropped",
			env: map[string]string{
				EnvCommand:    "  echo   done ",
				EnvNamespace:  os,
				EnvServices:   " mariadb , other:memcached,\tmariadb,openstack:mariadb ",
				EnvJobs:       "db-sync,other:db-sync.v2",
				EnvDaemonSets: "ovs-agent",
				EnvNodeName:   "node-1.example.com",
			},
			want: &Spec{
				Namespace: os, NodeName: "node-1.example.com",
				Command:    []string{"echo", "done"},
				Services:   []ObjectRef{{Namespace: os, Name: "mariadb"}, {Namespace: "other", Name: "memcached"}},
				Jobs:       []JobRef{{Namespace: os, Name: "db-sync"}, {Namespace: "other", Name: "db-sync.v2"}},
				DaemonSets: []ObjectRef{{Namespace: os, Name: "ovs-agent"}},
			},
		},
		{
			name: "jobs JSON wins over DEPENDENCY_JOBS, which is not even checked",
			env: map[string]string{
				EnvNamespace: os,
				EnvJobs:      "not,,valid:at:all",
				EnvJobsJSON:  `[{"name":"db-init"},{"labels":{"application":"nova","component":"db"},"namespace":"infra"},{"labels":{},"name":"bootstrap"}]`,
			},
			want: &Spec{Namespace: os, Jobs: []JobRef{
				{Namespace: os, Name: "db-init"},
				{Namespace: "infra", Labels: map[string]string{"application": "nova", "component": "db"}},
				{Namespace: os, Name: "bootstrap"},
			}},
		},
		{
			name: "an empty jobs JSON array still wins",
			env:  map[string]string{EnvJobs: "db-sync", EnvJobsJSON: " [ ] "},
			want: &Spec{Namespace: "default"},
		},
		{
			name: "containers and same-node pods with POD_NAME; key order does not matter",
			env: map[string]string{
				EnvNamespace: os, EnvPodName: "nova-compute-abc12",
				EnvContainers: "libvirt, ovs",
				EnvPodsJSON: `[{"requireSameNode":true,"labels":{"component":"libvirt","application":"libvirt"}},
				  {"namespace":"infra","labels":{"app.kubernetes.io/name":"ovs"},"requireSameNode":false}]`,
			},
			want: &Spec{
				Namespace: os, PodName: "nova-compute-abc12",
				Containers: []string{"libvirt", "ovs"},
				Pods: []PodRef{
					{Namespace: os, Labels: map[string]string{"application": "libvirt", "component": "libvirt"}, RequireSameNode: true},
					{Namespace: "infra", Labels: map[string]string{"app.kubernetes.io/name": "ovs"}},
				},
			},
		},
		{
			name: "daemonset and same-node pod with NODE_NAME alone",
			env: map[string]string{
				EnvNodeName: "worker-3", EnvDaemonSets: "kube-system:ovs",
				EnvPodsJSON: `[{"labels":{"a":"b"},"requireSameNode":true}]`,
			},
			want: &Spec{
				Namespace: "default", NodeName: "worker-3",
				DaemonSets: []ObjectRef{{Namespace: "kube-system", Name: "ovs"}},
				Pods:       []PodRef{{Namespace: "default", Labels: map[string]string{"a": "b"}, RequireSameNode: true}},
			},
		},
		{
			name: "custom resources: raw values, default status, core v1",
			env: map[string]string{
				EnvNamespace: os,
				EnvCustomResources: `[
				  {"apiVersion":"mariadb.osh.openstack.org/v1alpha1","conditions":[{"type":"Ready"},{"status":"False","type":"Degraded"}],
				   "kind":"Connection","name":"nova-cell0-db-conn","namespace":"infra"},
				  {"apiVersion":"v1","kind":"ConfigMap","name":"settings","fields":[
				     {"key":"data.mode","value":"on"},
				     {"value": 3 ,"key":"metadata.generation"},
				     {"key":"data","value":{"a": [1, true]}},
				     {"key":"status.x","value":null}]}]`,
			},
			want: &Spec{Namespace: os, CustomResources: []CustomResourceRef{
				{
					APIVersion: "mariadb.osh.openstack.org/v1alpha1", Kind: "Connection",
					Namespace: "infra", Name: "nova-cell0-db-conn",
					Conditions: []ConditionMatch{{"Ready", "True"}, {"Degraded", "False"}},
				},
				{
					APIVersion: "v1", Kind: "ConfigMap", Namespace: os, Name: "settings",
					Fields: []FieldMatch{
						{"data.mode", json.RawMessage(`"on"`)},
						{"metadata.generation", json.RawMessage(`3`)},
						{"data", json.RawMessage(`{"a": [1, true]}`)},
						{"status.x", json.RawMessage(`null`)},
					},
				},
			}},
		},
		{
			name: "paths, tcp and http",
			env: map[string]string{
				EnvConfigs: "/etc/nova/nova.conf, /etc/nova/api-paste.ini",
				EnvSockets: "/run/openvswitch/db.sock",
				EnvTCP:     "mariadb.openstack.svc:3306, 10.0.0.1:0080,[fd00::1]:5432,MyHost:1",
				EnvHTTP:    "http://keystone-api:5000/v3, https://[fd00::1]/healthz?x=1",
			},
			want: &Spec{
				Namespace: "default",
				Configs:   []string{"/etc/nova/nova.conf", "/etc/nova/api-paste.ini"},
				Sockets:   []string{"/run/openvswitch/db.sock"},
				TCP:       []string{"mariadb.openstack.svc:3306", "10.0.0.1:80", "[fd00::1]:5432", "MyHost:1"},
				HTTP:      []string{"http://keystone-api:5000/v3", "https://[fd00::1]/healthz?x=1"},
			},
		},
	}
}

func TestFromEnvAcceptsGoodInput(t *testing.T) {
	for _, tc := range goodCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromEnv(lookupIn(tc.env))
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("FromEnv =\n%#v\nwant\n%#v", got, tc.want)
			}
			checkSpec(t, got)
		})
	}
}

type badCase struct {
	name string
	env  map[string]string
	// variable is the one the (only) problem must name.
	variable string
	// want are parts of the message: the quoted bad value, the problem, the form.
	want []string
}

func badCases() []badCase {
	const objects = "; expected [namespace:]name,..."
	const services = "; expected [namespace:]name[#n],..."
	const jobsJSON = `; expected [{"name":"..."} or {"labels":{"key":"value",...}}, either with "namespace"?:"...",...]`
	const podsJSON = `; expected [{"labels":{"key":"value",...},"namespace"?:"...","requireSameNode"?:true|false},...]`
	const crJSON = `; expected [{"apiVersion":"v1 or group/version"`
	const paths = "; expected /absolute/path,..."
	const tcp = "; expected host:port,..."
	const http = "; expected http(s)://host[:port][/path],..."
	withPod := func(name, value string) map[string]string {
		return map[string]string{EnvPodName: "me-abc12", name: value}
	}
	return []badCase{
		{"namespace not a label", map[string]string{EnvNamespace: "Open Stack"}, EnvNamespace,
			[]string{`"Open Stack" is not a DNS-1123 label (`, "; expected a namespace name (a DNS-1123 label)"}},
		{"pod name not a subdomain", map[string]string{EnvPodName: "me_1"}, EnvPodName,
			[]string{`"me_1" is not a DNS-1123 subdomain (`, "; expected the pod's name"}},
		{"node name not a subdomain", map[string]string{EnvNodeName: "node 1"}, EnvNodeName,
			[]string{`"node 1" is not a DNS-1123 subdomain`, "; expected the node's name"}},

		{"empty service item", map[string]string{EnvServices: "openstack:mariadb,,x"}, EnvServices,
			[]string{`item 2 of "openstack:mariadb,,x" is empty` + services}},
		{"trailing comma", map[string]string{EnvServices: "mariadb,"}, EnvServices,
			[]string{`item 2 of "mariadb," is empty` + services}},
		{"leading comma", map[string]string{EnvServices: " ,mariadb "}, EnvServices,
			[]string{`item 1 of ",mariadb" is empty` + services}},
		{"two colons", map[string]string{EnvServices: "a:b:c"}, EnvServices,
			[]string{`item 1 of "a:b:c" has more than one ':'` + services}},
		{"empty namespace", map[string]string{EnvServices: "x, :mariadb"}, EnvServices,
			[]string{`item 2 ":mariadb" of "x, :mariadb" has an empty namespace before ':'` + services}},
		{"empty name", map[string]string{EnvServices: "openstack:"}, EnvServices,
			[]string{`item 1 of "openstack:" has an empty name after ':'` + services}},
		{"service name with a dot", map[string]string{EnvServices: "openstack:my.svc"}, EnvServices,
			[]string{`has name "my.svc", which is not a DNS-1035 label (`, services}},
		{"namespace with capitals", map[string]string{EnvServices: "Infra:db"}, EnvServices,
			[]string{`has namespace "Infra", which is not a DNS-1123 label (`, services}},
		{"optional-after not a duration", map[string]string{EnvOptionalAfter: "5 minutes"}, EnvOptionalAfter,
			[]string{`"5 minutes" is not a non-negative Go duration; expected how long to wait before starting without the dependencies still blocking, such as 5m`}},
		{"service minimum not a number", map[string]string{EnvServices: "db#three"}, EnvServices,
			[]string{`item 1 of "db#three" has minimum "three" after '#', not a whole number` + services}},
		{"service minimum zero", map[string]string{EnvServices: "openstack:db#0"}, EnvServices,
			[]string{`has minimum 0 after '#', not at least 1` + services}},
		{"service minimum signed", map[string]string{EnvServices: "db#+2"}, EnvServices,
			[]string{`has minimum "+2" after '#', not a whole number`}},
		{"service minimum on a bad name", map[string]string{EnvServices: "my.svc#2"}, EnvServices,
			[]string{`has name "my.svc", which is not a DNS-1035 label (`}},
		{"pod IP not an IP", map[string]string{EnvPodIP: "10.0.0"}, EnvPodIP,
			[]string{`"10.0.0" is not an IP address; expected the pod's IP (valueFrom.fieldRef status.podIP)`}},
		{"empty job item", map[string]string{EnvJobs: "a,,b"}, EnvJobs,
			[]string{`item 2 of "a,,b" is empty` + objects}},
		{"job name not a subdomain", map[string]string{EnvJobs: "db_sync"}, EnvJobs,
			[]string{`has name "db_sync", which is not a DNS-1123 subdomain (`, objects}},
		{"daemonset without pod or node name", map[string]string{EnvDaemonSets: "ovs"}, EnvDaemonSets,
			[]string{`"ovs" needs POD_NAME or NODE_NAME, both empty or unset; expected POD_NAME set to`}},
		{"empty daemonset item", withPod(EnvDaemonSets, "ovs,"), EnvDaemonSets,
			[]string{`item 2 of "ovs," is empty` + objects}},
		{"container without pod name", map[string]string{EnvNodeName: "n", EnvContainers: "main"}, EnvContainers,
			[]string{`"main" needs POD_NAME, which is empty or unset; expected POD_NAME set to the pod's name`}},
		{"container not a label", withPod(EnvContainers, "main,Side.car"), EnvContainers,
			[]string{`item 2 "Side.car" of "main,Side.car" is not a DNS-1123 label (`, "; expected name,..."}},

		{"jobs JSON not an array", map[string]string{EnvJobsJSON: `{"name":"a"}`}, EnvJobsJSON,
			[]string{"`{\"name\":\"a\"}` is not a JSON array" + jobsJSON}},
		{"jobs JSON with trailing data", map[string]string{EnvJobsJSON: `[{"name":"a"}] []`}, EnvJobsJSON,
			[]string{"`[{\"name\":\"a\"}] []` has more after the closing ']' of the JSON array" + jobsJSON}},
		{"jobs JSON broken", map[string]string{EnvJobsJSON: `[{"name":"a"},]`}, EnvJobsJSON,
			[]string{"`[{\"name\":\"a\"},]` is not valid JSON (invalid character ']'", jobsJSON}},
		{"jobs JSON cut short", map[string]string{EnvJobsJSON: `[{"name":"a"}`}, EnvJobsJSON,
			[]string{"is not valid JSON (it ends too early)", jobsJSON}},
		{"job with name and labels", map[string]string{EnvJobsJSON: `[{"name":"a","labels":{"x":"y"}}]`}, EnvJobsJSON,
			[]string{"item 1 of `[{\"name\":\"a\",\"labels\":{\"x\":\"y\"}}]` has both \"name\" and \"labels\" (give one)" + jobsJSON}},
		{"job with neither", map[string]string{EnvJobsJSON: `[{"name":"a"},{"namespace":"x","labels":{}}]`}, EnvJobsJSON,
			[]string{"item 2 `{\"namespace\":\"x\",\"labels\":{}}` of ", `has neither "name" nor non-empty "labels"` + jobsJSON}},
		{"job with a wrongly typed name", map[string]string{EnvJobsJSON: `[{"name":1}]`}, EnvJobsJSON,
			[]string{`has "name" holding a JSON number where a string is expected` + jobsJSON}},
		{"job with a bad label key", map[string]string{EnvJobsJSON: `[{"labels":{"a b":"c"}}]`}, EnvJobsJSON,
			[]string{`has labels key "a b", which is not a label key (`, jobsJSON}},
		{"job with a bad label value", map[string]string{EnvJobsJSON: `[{"labels":{"a":"b c"}}]`}, EnvJobsJSON,
			[]string{`has labels["a"] "b c", which is not a label value (`, jobsJSON}},
		{"job with a bad namespace", map[string]string{EnvJobsJSON: `[{"name":"a","namespace":"A"}]`}, EnvJobsJSON,
			[]string{`has namespace "A", which is not a DNS-1123 label`, jobsJSON}},
		{"job item not an object", map[string]string{EnvJobsJSON: `[null]`}, EnvJobsJSON,
			[]string{`item 1 of "[null]" is not a JSON object` + jobsJSON}},

		{"pod selector empty", withPod(EnvPodsJSON, `[{"labels":{}}]`), EnvPodsJSON,
			[]string{`has no "labels" (an empty selector would match every pod)` + podsJSON}},
		{"pod selector missing", withPod(EnvPodsJSON, `[{"namespace":"x"}]`), EnvPodsJSON,
			[]string{`has no "labels"`, podsJSON}},
		{"pod field misspelt", withPod(EnvPodsJSON, `[{"labels":{"a":"b"},"requireSamenode":true}]`), EnvPodsJSON,
			[]string{`has unknown field "requireSamenode" (did you mean "requireSameNode"?)` + podsJSON}},
		{"pod field unknown", withPod(EnvPodsJSON, `[{"labels":{"a":"b"},"node":"x"}]`), EnvPodsJSON,
			[]string{`has unknown field "node"` + podsJSON}},
		{"pod field wrongly typed", withPod(EnvPodsJSON, `[{"labels":{"a":"b"},"requireSameNode":"yes"}]`), EnvPodsJSON,
			[]string{`has "requireSameNode" holding a JSON string where true or false is expected` + podsJSON}},
		{"pod labels wrongly typed", withPod(EnvPodsJSON, `[{"labels":["a"]}]`), EnvPodsJSON,
			[]string{`has "labels" holding a JSON array where an object of strings is expected` + podsJSON}},
		{"same-node pod without pod or node name", map[string]string{EnvPodsJSON: `[{"labels":{"a":"b"}},{"labels":{"a":"b"},"requireSameNode":true}]`}, EnvPodsJSON,
			[]string{`item 2 of `, `has "requireSameNode":true, which needs POD_NAME or NODE_NAME, both empty or unset; expected POD_NAME set to`}},

		{"resource without apiVersion", map[string]string{EnvCustomResources: `[{"kind":"Pod","name":"x"}]`}, EnvCustomResources,
			[]string{`has no "apiVersion"`, crJSON}},
		{"resource with a bad apiVersion", map[string]string{EnvCustomResources: `[{"apiVersion":"a/b/c","kind":"Pod","name":"x"}]`}, EnvCustomResources,
			[]string{`has apiVersion "a/b/c", which is not "v1" or "group/version"`, crJSON}},
		{"resource with a bad group", map[string]string{EnvCustomResources: `[{"apiVersion":"Apps_/v1","kind":"Pod","name":"x"}]`}, EnvCustomResources,
			[]string{`has apiVersion "Apps_/v1" with group "Apps_", which is not an API group`, crJSON}},
		{"resource without kind", map[string]string{EnvCustomResources: `[{"apiVersion":"v1","name":"x"}]`}, EnvCustomResources,
			[]string{`has no "kind"`, crJSON}},
		{"resource with a bad kind", map[string]string{EnvCustomResources: `[{"apiVersion":"v1","kind":"Config Map","name":"x"}]`}, EnvCustomResources,
			[]string{`has kind "Config Map", which is not a kind (once lower-cased,`, crJSON}},
		{"resource without name", map[string]string{EnvCustomResources: `[{"apiVersion":"v1","kind":"Pod"}]`}, EnvCustomResources,
			[]string{`has no "name"`, crJSON}},
		{"resource field key with an empty segment", map[string]string{EnvCustomResources: `[{"apiVersion":"v1","kind":"Pod","name":"x","fields":[{"key":"status..phase","value":"Running"}]}]`}, EnvCustomResources,
			[]string{`has fields[0].key "status..phase", which has an empty segment`, crJSON}},
		{"resource field without key", map[string]string{EnvCustomResources: `[{"apiVersion":"v1","kind":"Pod","name":"x","fields":[{"value":"Running"}]}]`}, EnvCustomResources,
			[]string{`has fields[0] without "key"`, crJSON}},
		{"resource field without value", map[string]string{EnvCustomResources: `[{"apiVersion":"v1","kind":"Pod","name":"x","fields":[{"key":"a"},{"key":"b","value":1}]}]`}, EnvCustomResources,
			[]string{`has fields[0] without "value"`, crJSON}},
		{"resource field misspelt", map[string]string{EnvCustomResources: `[{"apiVersion":"v1","kind":"Pod","name":"x","fields":[{"key":"a","Value":1}]}]`}, EnvCustomResources,
			[]string{`has unknown field "fields[0].Value" (did you mean "value"?)`, crJSON}},
		{"resource field not an object", map[string]string{EnvCustomResources: `[{"apiVersion":"v1","kind":"Pod","name":"x","fields":["status.phase"]}]`}, EnvCustomResources,
			[]string{`has fields[0], which is not a JSON object`, crJSON}},
		{"resource condition without type", map[string]string{EnvCustomResources: `[{"apiVersion":"v1","kind":"Pod","name":"x","conditions":[{"status":"True"}]}]`}, EnvCustomResources,
			[]string{`has conditions[0] without "type"`, crJSON}},
		{"resource condition status in lower case", map[string]string{EnvCustomResources: `[{"apiVersion":"v1","kind":"Pod","name":"x","conditions":[{"type":"Ready","status":"true"}]}]`}, EnvCustomResources,
			[]string{`has conditions[0].status "true", which is not True, False or Unknown`, crJSON}},

		{"relative config path", map[string]string{EnvConfigs: "etc/nova.conf"}, EnvConfigs,
			[]string{`item 1 of "etc/nova.conf" is not an absolute path` + paths}},
		{"config path ending in a slash", map[string]string{EnvConfigs: "/etc/nova/"}, EnvConfigs,
			[]string{`item 1 of "/etc/nova/" ends with '/' (a file path is expected)` + paths}},
		{"config path not clean", map[string]string{EnvConfigs: "/etc/../nova.conf"}, EnvConfigs,
			[]string{`item 1 of "/etc/../nova.conf" is not a clean path ("/nova.conf" would be)` + paths}},
		{"relative socket path", map[string]string{EnvSockets: "/run/a.sock,run/b.sock"}, EnvSockets,
			[]string{`item 2 "run/b.sock" of "/run/a.sock,run/b.sock" is not an absolute path` + paths}},

		{"tcp without port", map[string]string{EnvTCP: "mariadb"}, EnvTCP,
			[]string{`item 1 of "mariadb" is not host:port (missing port in address)` + tcp}},
		{"tcp port zero", map[string]string{EnvTCP: "db:0"}, EnvTCP,
			[]string{`item 1 of "db:0" has port "0", which is not a number from 1 to 65535` + tcp}},
		{"tcp port too big", map[string]string{EnvTCP: "db:65536"}, EnvTCP,
			[]string{`has port "65536", which is not a number from 1 to 65535` + tcp}},
		{"tcp port by name", map[string]string{EnvTCP: "db:mysql"}, EnvTCP,
			[]string{`has port "mysql", which is not a number from 1 to 65535` + tcp}},
		{"tcp without host", map[string]string{EnvTCP: ":3306"}, EnvTCP,
			[]string{`item 1 of ":3306" has an empty host` + tcp}},
		{"tcp host not a name", map[string]string{EnvTCP: "my_db:3306"}, EnvTCP,
			[]string{`has host "my_db", which is neither an IP address nor a DNS name` + tcp}},

		{"http with another scheme", map[string]string{EnvHTTP: "ftp://files"}, EnvHTTP,
			[]string{`item 1 of "ftp://files" has scheme "ftp", which is not http or https` + http}},
		{"http without scheme", map[string]string{EnvHTTP: "keystone:5000/v3"}, EnvHTTP,
			[]string{`item 1 of "keystone:5000/v3" `, http}},
		{"http without host", map[string]string{EnvHTTP: "http:///v3"}, EnvHTTP,
			[]string{`item 1 of "http:///v3" has no host` + http}},
		{"http with port zero", map[string]string{EnvHTTP: "http://a:0/"}, EnvHTTP,
			[]string{`has port "0", which is not a number from 1 to 65535` + http}},
		{"http not a URL", map[string]string{EnvHTTP: "http://a b/"}, EnvHTTP,
			[]string{`item 1 of "http://a b/" is not a URL (`, http}},
	}
}

func TestFromEnvRejectsBadInput(t *testing.T) {
	for _, tc := range badCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromEnv(lookupIn(tc.env))
			if err == nil {
				t.Fatalf("FromEnv accepted it: %#v", got)
			}
			if got != nil {
				t.Errorf("FromEnv returned a Spec with its error: %#v", got)
			}
			problems := ValueErrors(err)
			if len(problems) != 1 {
				t.Fatalf("want 1 problem, got %d:\n%v", len(problems), err)
			}
			msg := err.Error()
			if problems[0].Name != tc.variable || !strings.HasPrefix(msg, tc.variable+": ") {
				t.Errorf("problem names %q, want %q:\n%s", problems[0].Name, tc.variable, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %s:\n%s", w, msg)
				}
			}
			if !strings.Contains(msg, "; expected ") {
				t.Errorf("message does not state the expected form:\n%s", msg)
			}
		})
	}
}

func TestFromEnvExactMessage(t *testing.T) {
	_, err := FromEnv(lookupIn(map[string]string{EnvServices: "openstack:mariadb,,x"}))
	const want = `DEPENDENCY_SERVICE: item 2 of "openstack:mariadb,,x" is empty; expected [namespace:]name[#n],...`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestFromEnvReportsEveryProblem(t *testing.T) {
	env := map[string]string{
		EnvNamespace:       "Bad NS",
		EnvServices:        "a,,b:c:d",
		EnvJobsJSON:        `[{}]`,
		EnvContainers:      "main",
		EnvPodsJSON:        `{"labels":{"a":"b"}}`,
		EnvCustomResources: `[{"apiVersion":"v1"}]`,
		EnvConfigs:         "relative",
		EnvTCP:             "nohost",
		EnvHTTP:            "ftp://x",
	}
	_, err := FromEnv(lookupIn(env))
	if err == nil {
		t.Fatal("FromEnv accepted it")
	}
	count := map[string]int{}
	for _, p := range ValueErrors(err) {
		count[p.Name]++
	}
	want := map[string]int{
		EnvNamespace:       1,
		EnvServices:        2, // the empty item and the one with two colons
		EnvJobsJSON:        1,
		EnvContainers:      1, // no POD_NAME
		EnvPodsJSON:        1,
		EnvCustomResources: 2, // no kind, no name
		EnvConfigs:         1,
		EnvTCP:             1,
		EnvHTTP:            1,
	}
	if !reflect.DeepEqual(count, want) {
		t.Errorf("problems per variable = %v, want %v\n%v", count, want, err)
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != 11 {
		t.Errorf("want one line per problem (11), got %d:\n%v", lines, err)
	}
}

func TestLongValuesAreCutInMessages(t *testing.T) {
	long := strings.Repeat("service-name,", 200) + ",last"
	_, err := FromEnv(lookupIn(map[string]string{EnvServices: long}))
	if err == nil {
		t.Fatal("FromEnv accepted it")
	}
	msg := err.Error()
	if !strings.Contains(msg, "item 201 of \"service-name,") || !strings.Contains(msg, fmt.Sprintf("... (%d bytes in all) is empty", len(long))) {
		t.Errorf("message does not show a cut value:\n%s", msg)
	}
	if len(msg) > 400 {
		t.Errorf("message is %d bytes long:\n%s", len(msg), msg)
	}
}

// A Service item may ask for a minimum of ready endpoints with "#n"; "#1" is the
// default rule and reads as no minimum.
func TestServiceMinimumReady(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  []ObjectRef
	}{
		{"mariadb", []ObjectRef{{Namespace: "ns", Name: "mariadb"}}},
		{"mariadb#3", []ObjectRef{{Namespace: "ns", Name: "mariadb", MinReady: 3}}},
		{"openstack:mariadb#3", []ObjectRef{{Namespace: "openstack", Name: "mariadb", MinReady: 3}}},
		{"openstack:mariadb#1", []ObjectRef{{Namespace: "openstack", Name: "mariadb"}}},
		{"db#2, cache", []ObjectRef{{Namespace: "ns", Name: "db", MinReady: 2}, {Namespace: "ns", Name: "cache"}}},
	} {
		t.Run(tc.value, func(t *testing.T) {
			got, err := ParseServiceList(tc.value, "ns")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseServiceList(%q) = %+v, want %+v", tc.value, got, tc.want)
			}
		})
	}
}
