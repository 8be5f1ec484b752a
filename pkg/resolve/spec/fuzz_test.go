package spec

import (
	"encoding/json"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"
)

func FuzzFromEnv(f *testing.F) {
	for _, env := range tableEnvs() {
		f.Add(env[EnvNamespace], env[EnvPodName], env[EnvNodeName], env[EnvCommand], env[EnvServices],
			env[EnvJobs], env[EnvJobsJSON], env[EnvDaemonSets], env[EnvContainers], env[EnvPodsJSON],
			env[EnvCustomResources], env[EnvConfigs], env[EnvTCP], env[EnvHTTP])
	}
	f.Fuzz(func(t *testing.T, namespace, podName, nodeName, command, services, jobs, jobsJSON,
		daemonSets, containers, podsJSON, customResources, configs, tcp, http string) {
		env := map[string]string{
			EnvNamespace: namespace, EnvPodName: podName, EnvNodeName: nodeName, EnvCommand: command,
			EnvServices: services, EnvJobs: jobs, EnvJobsJSON: jobsJSON, EnvDaemonSets: daemonSets,
			EnvContainers: containers, EnvPodsJSON: podsJSON, EnvCustomResources: customResources,
			// Sockets share the configs' parser; fuzzing one of them is enough.
			EnvConfigs: configs, EnvTCP: tcp, EnvHTTP: http,
		}
		s, err := FromEnv(lookupIn(env))
		if err != nil {
			checkProblems(t, err, true)
			return
		}
		checkSpec(t, s)
	})
}

func FuzzParseJobsJSON(f *testing.F) {
	seedJSON(f, EnvJobsJSON)
	f.Fuzz(func(t *testing.T, value string) {
		jobs, err := ParseJobsJSON(value, "ns")
		if err != nil {
			checkProblems(t, err, false)
			return
		}
		checkSpec(t, &Spec{Namespace: "ns", PodName: "fuzz-abc12", Jobs: jobs})
	})
}

func FuzzParsePodsJSON(f *testing.F) {
	seedJSON(f, EnvPodsJSON)
	f.Fuzz(func(t *testing.T, value string) {
		pods, err := ParsePodsJSON(value, "ns")
		if err != nil {
			checkProblems(t, err, false)
			return
		}
		checkSpec(t, &Spec{Namespace: "ns", PodName: "fuzz-abc12", Pods: pods})
	})
}

func FuzzParseCustomResourcesJSON(f *testing.F) {
	seedJSON(f, EnvCustomResources)
	f.Fuzz(func(t *testing.T, value string) {
		resources, err := ParseCustomResourcesJSON(value, "ns")
		if err != nil {
			checkProblems(t, err, false)
			return
		}
		checkSpec(t, &Spec{Namespace: "ns", PodName: "fuzz-abc12", CustomResources: resources})
	})
}

// seedJSON seeds a JSON parser's corpus with every value the tables give variable,
// and the other JSON variables' values too: the wrong shape is worth trying.
func seedJSON(f *testing.F, variable string) {
	f.Add(variable) // not JSON at all
	for _, env := range tableEnvs() {
		for _, name := range []string{EnvJobsJSON, EnvPodsJSON, EnvCustomResources} {
			if v, ok := env[name]; ok {
				f.Add(v)
			}
		}
	}
}

func tableEnvs() []map[string]string {
	var envs []map[string]string
	for _, tc := range goodCases() {
		envs = append(envs, tc.env)
	}
	for _, tc := range badCases() {
		envs = append(envs, tc.env)
	}
	return envs
}

// checkProblems asserts that every problem in err is a ValueError with a message
// people can act on: named when it comes from FromEnv, never when from a Parse*.
func checkProblems(t *testing.T, err error, named bool) {
	t.Helper()
	leafs := leaves(err)
	problems := ValueErrors(err)
	if len(problems) == 0 || len(problems) != len(leafs) {
		t.Fatalf("%d of %d problems are ValueErrors: %v", len(problems), len(leafs), err)
	}
	for _, p := range problems {
		if (p.Name != "") != named || p.Problem == "" || p.Expected == "" {
			t.Errorf("incomplete problem %+v", p)
		}
		if p.Item < 0 || len(p.Value) > 0 && strings.TrimSpace(p.Value) != p.Value {
			t.Errorf("problem with a bad item or untrimmed value: %+v", p)
		}
	}
}

// checkFormatParsesBack asserts that what the webhook would write of s, kind by
// kind, parses back to what it wrote. A kind another supersedes is left out: the
// items they share are the superseding kind's, which it can write.
func checkFormatParsesBack(t *testing.T, s *Spec) {
	t.Helper()
	kinds := Kinds()
	for _, k := range kinds {
		if slices.ContainsFunc(kinds, func(by Kind) bool { return by.Supersedes == k.Env }) {
			continue
		}
		formatted := k.Format(s)
		again := &Spec{Namespace: "elsewhere"} // every namespace is spelled out
		if err := k.Parse(again, formatted); err != nil {
			t.Fatalf("%s: Format wrote %q, which does not parse: %v", k.Env, formatted, err)
		}
		if f := k.Format(again); f != formatted {
			t.Fatalf("%s: Format wrote %q, which parses back as %q", k.Env, formatted, f)
		}
	}
}

// checkSpec asserts what every accepted Spec guarantees its resolvers.
func checkSpec(t *testing.T, s *Spec) {
	t.Helper()
	checkFormatParsesBack(t, s)
	label := func(what, v string) {
		if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
			t.Errorf("%s %q is not a DNS-1123 label: %v", what, v, errs)
		}
	}
	subdomain := func(what, v string) {
		if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
			t.Errorf("%s %q is not a DNS-1123 subdomain: %v", what, v, errs)
		}
	}
	selector := func(what string, labels map[string]string) {
		if len(labels) == 0 {
			t.Errorf("%s has an empty selector", what)
		}
		for k, v := range labels {
			if len(content.IsLabelKey(k)) > 0 || len(content.IsLabelValue(v)) > 0 {
				t.Errorf("%s has a bad label %q=%q", what, k, v)
			}
		}
	}

	label("namespace", s.Namespace)
	if s.PodName != "" {
		subdomain("pod name", s.PodName)
	}
	for _, arg := range s.Command {
		if strings.TrimSpace(arg) != arg || arg == "" {
			t.Errorf("command item %q", arg)
		}
	}
	for _, r := range s.Services {
		label("service namespace", r.Namespace)
		if errs := validation.IsDNS1035Label(r.Name); len(errs) > 0 {
			t.Errorf("service name %q: %v", r.Name, errs)
		}
	}
	for _, r := range s.DaemonSets {
		label("daemonset namespace", r.Namespace)
		subdomain("daemonset name", r.Name)
	}
	if len(s.DaemonSets)+len(s.Containers) > 0 && s.PodName == "" && s.NodeName == "" {
		t.Errorf("daemonsets or containers without POD_NAME or NODE_NAME")
	}
	if len(s.Containers) > 0 && s.PodName == "" {
		t.Errorf("containers without POD_NAME")
	}
	for _, c := range s.Containers {
		label("container", c)
	}
	for _, j := range s.Jobs {
		label("job namespace", j.Namespace)
		if (j.Name == "") == (j.Labels == nil) {
			t.Errorf("job %+v needs exactly one of name and labels", j)
		}
		if j.Name != "" {
			subdomain("job name", j.Name)
		} else {
			selector("job "+j.String(), j.Labels)
		}
	}
	for _, p := range s.Pods {
		label("pod namespace", p.Namespace)
		selector("pod "+p.String(), p.Labels)
		if p.RequireSameNode && s.PodName == "" && s.NodeName == "" {
			t.Errorf("same-node pod without POD_NAME or NODE_NAME")
		}
	}
	for _, r := range s.CustomResources {
		label("resource namespace", r.Namespace)
		subdomain("resource name", r.Name)
		if r.APIVersion == "" || r.Kind == "" || strings.Count(r.APIVersion, "/") > 1 {
			t.Errorf("resource %+v lacks apiVersion or kind", r)
		}
		for _, f := range r.Fields {
			if f.Key == "" || strings.Contains("."+f.Key+".", "..") {
				t.Errorf("resource %s has field key %q", r, f.Key)
			}
			if !json.Valid(f.Value) || strings.TrimSpace(string(f.Value)) != string(f.Value) {
				t.Errorf("resource %s has field value %q", r, f.Value)
			}
		}
		for _, c := range r.Conditions {
			if c.Type == "" || (c.Status != "True" && c.Status != "False" && c.Status != "Unknown") {
				t.Errorf("resource %s has condition %+v", r, c)
			}
		}
	}
	for _, p := range append(append([]string(nil), s.Configs...), s.Sockets...) {
		if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
			t.Errorf("path %q", p)
		}
	}
	for _, a := range s.TCP {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" || port == "0" {
			t.Errorf("tcp %q", a)
		}
	}
	for _, h := range s.HTTP {
		if u, err := url.Parse(h); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			t.Errorf("http %q", h)
		}
	}
	checkNoDuplicates(t, s)
}

func checkNoDuplicates(t *testing.T, s *Spec) {
	t.Helper()
	seen := map[string]bool{}
	for _, list := range [][]string{
		refsToStrings("service", s.Services), refsToStrings("daemonset", s.DaemonSets),
		s.Containers, s.Configs, s.Sockets, s.TCP, s.HTTP,
	} {
		clear(seen)
		for _, v := range list {
			if seen[v] {
				t.Errorf("duplicate %q", v)
			}
			seen[v] = true
		}
	}
}

func refsToStrings(kind string, refs []ObjectRef) []string {
	var out []string
	for _, r := range refs {
		out = append(out, kind+" "+r.String())
	}
	return out
}
