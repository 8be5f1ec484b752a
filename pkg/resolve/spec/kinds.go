package spec

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Kind is one dependency kind of the contract between the webhook and the
// resolver: the pod annotation that asks for it, the environment variable that
// carries it, the one parser and the one formatter of that variable's value, and
// its rows in docs/resolver.md and docs/webhook.md. Adding a kind is a parser and
// one row in Kinds; the webhook, FromEnv and the docs check all read the table.
type Kind struct {
	// Annotation is the pod annotation's name after the webhook's "entrypoint.io/".
	Annotation string
	// Env is the resolver's environment variable.
	Env string
	// JSON tells that a value is a JSON array of objects; otherwise it is a
	// comma-separated list.
	JSON bool
	// API tells that the resolver reads the dependencies from the Kubernetes API;
	// the others it checks locally.
	API bool
	// NodeFree tells that the dependencies can be judged without the pod's node,
	// so the controller can wait for them in gate mode.
	NodeFree bool
	// SameNode tells that (some of) the dependencies are judged from the API on
	// the pod's node (a DaemonSet's pod there, pods with requireSameNode): gate
	// mode holds the pod for them too, and the controller judges them on the
	// node the pod is bound to, or narrows the pod to the nodes where they are
	// ready.
	SameNode bool
	// GateOptIn tells that the dependencies need no node either, but the
	// controller waits for them only when its operator opted in (Secrets: the
	// controller would have to watch every Secret); otherwise they stay with the
	// resolver in the pod.
	GateOptIn bool
	// Supersedes is the variable of another kind that the resolver neither reads
	// nor checks when this one is set (as the original did); "" for none.
	Supersedes string
	// Conflict is why annotating both this kind and the one it supersedes is
	// refused, and what to do instead; set with Supersedes.
	Conflict string
	// Doc are the kind's cells in docs/resolver.md and docs/webhook.md.
	Doc Doc
	// Example is a valid value, for tests that every kind is handled everywhere.
	Example string

	parse  func(s *Spec, value string) error
	format func(s *Spec) string
	count  func(s *Spec) int
	concat func(dst *Spec, parts []*Spec)
	// needs checks, once the kind is parsed, what it needs of the pod's variables
	// (POD_NAME, NODE_NAME) for the resolver to find its node; nil when nothing.
	needs func(s *Spec, value string) error
}

// Doc is what the manuals say about a kind: its row of the "Environment contract"
// table (docs/resolver.md) and its row of the annotation table (docs/webhook.md),
// cell by cell, Markdown as written there.
type Doc struct {
	Format       string // env table, column "format"
	ResolvedWhen string // env table, column "resolved when"
	Value        string // annotation table, column "value"
}

// Parse parses value, blanks around it trimmed, into this kind's items of s;
// items without a namespace get s.Namespace. On error the items are left empty
// and every problem is a *ValueError without a Name (see WithName).
func (k Kind) Parse(s *Spec, value string) error { return k.parse(s, strings.TrimSpace(value)) }

// Format writes this kind's items of s back as the variable's value, normalized:
// every namespace spelled out, JSON compact with sorted keys and no HTML escaping.
// It is "" when s has none. Parse(Format(s)) gives the same items.
func (k Kind) Format(s *Spec) string { return k.format(s) }

// Count is how many items of this kind s has. Kinds that share items (see
// Supersedes) count the same ones.
func (k Kind) Count(s *Spec) int { return k.count(s) }

// Concat appends this kind's items of each of parts to dst's, dropping the
// duplicates that Parse would drop within one value: the webhook parses a long
// value in parts.
func (k Kind) Concat(dst *Spec, parts []*Spec) { k.concat(dst, parts) }

// Kinds is the table, in the order of the environment contract: the order in
// which the webhook sets the variables and the resolver reports problems. Each
// call returns a copy of the one table, built once: the controller parses
// every pod's dependencies with it, thousands a second in a mass release.
func Kinds() []Kind { return slices.Clone(kindTable()) }

var kindTable = sync.OnceValue(buildKinds)

func buildKinds() []Kind {
	return []Kind{
		list(Kind{
			Annotation: "dependency-service", Env: EnvServices, API: true, NodeFree: true,
			Example: "mariadb,openstack:keystone-api",
			Doc: Doc{
				Format: "`[ns:]name[#n],...`; `#n` (n ≥ 1, e.g. `openstack:mariadb#3`) requires n ready endpoints",
				ResolvedWhen: "any EndpointSlice of the Service (all slices) has an endpoint whose `ready` is true or unset " +
					"(with `#n`: n distinct such endpoints across the slices); " +
					"Endpoints `addresses` where slices cannot be read (looking again every minute whether they can)",
				Value: "`[ns:]name[#n],...`",
			},
		}, func(s *Spec) *[]ObjectRef { return &s.Services }, ParseServiceList, serviceRefItem),
		list(Kind{
			Annotation: "dependency-job", Env: EnvJobs, API: true, NodeFree: true,
			Example: "keystone-db-sync",
			Doc: Doc{
				Format:       "`[ns:]name,...`",
				ResolvedWhen: "the Job has `succeeded > 0` or condition Complete",
				Value:        "`[ns:]name,...`",
			},
		}, func(s *Spec) *[]JobRef { return &s.Jobs }, parseJobList, func(r JobRef) string { return r.Namespace + ":" + r.Name }),
		jsonArray(Kind{
			Annotation: "dependency-job-json", Env: EnvJobsJSON, API: true, NodeFree: true,
			Supersedes: EnvJobs,
			Conflict: "the resolver would wait only for the jobs of the JSON one; " +
				`list every job in one of them (a named job in JSON is {"name":"..."})`,
			Example: `[{"labels":{"application":"keystone","component":"db-sync"}}]`,
			Doc: Doc{
				Format: "`[{\"name\"?,\"namespace\"?,\"labels\"?}]`",
				ResolvedWhen: "as above; with labels, at least one Job matches and all matching succeeded. " +
					"Wins over `DEPENDENCY_JOBS`",
				Value: "JSON as `DEPENDENCY_JOBS_JSON` (not together with `dependency-job`)",
			},
		}, func(s *Spec) *[]JobRef { return &s.Jobs }, ParseJobsJSON, jobItem),
		list(Kind{
			Annotation: "dependency-daemonset", Env: EnvDaemonSets, API: true, SameNode: true,
			Example: "openvswitch",
			Doc: Doc{
				Format: "`[ns:]name,...`",
				ResolvedWhen: "the DaemonSet's pod on this node (by node name and controller reference) is Ready; " +
					"a fully scheduled DaemonSet with no pod for this node does not block",
				Value: "`[ns:]name,...`",
			},
			// The resolver finds this node through its own pod unless NODE_NAME says it.
			needs: func(s *Spec, value string) error {
				if len(s.DaemonSets) == 0 || s.PodName != "" || s.NodeName != "" {
					return nil
				}
				return needsProblem(value, "POD_NAME or NODE_NAME, both empty or unset", "POD_NAME set to "+podNameFromFieldRef+", or NODE_NAME")
			},
		}, func(s *Spec) *[]ObjectRef { return &s.DaemonSets }, ParseObjectList, objectRefItem),
		list(Kind{
			Annotation: "dependency-container", Env: EnvContainers, API: true,
			Example: "sidecar",
			Doc: Doc{
				Format:       "`name,...`",
				ResolvedWhen: "that container of this pod, regular or native sidecar, is ready",
				Value:        "`name,...` (another container of the pod)",
			},
			needs: func(s *Spec, value string) error {
				if len(s.Containers) == 0 || s.PodName != "" {
					return nil
				}
				return needsProblem(value, "POD_NAME, which is empty or unset", "POD_NAME set to "+podNameFromFieldRef)
			},
		}, func(s *Spec) *[]string { return &s.Containers }, ignoreNamespace(ParseNames), identity),
		jsonArray(Kind{
			Annotation: "dependency-pod", Env: EnvPodsJSON, API: true, SameNode: true,
			Example: `[{"labels":{"application":"neutron","component":"ovs-agent"},"requireSameNode":true}]`,
			Doc: Doc{
				Format:       "`[{\"labels\":{},\"namespace\"?,\"requireSameNode\"?}]`",
				ResolvedWhen: "at least one matching, non-terminating pod is Ready (on this node if required)",
				Value:        "JSON as `DEPENDENCY_POD_JSON`",
			},
			needs: podsNeeds,
		}, func(s *Spec) *[]PodRef { return &s.Pods }, ParsePodsJSON, podItem),
		jsonArray(Kind{
			Annotation: "dependency-custom-resource", Env: EnvCustomResources, API: true, NodeFree: true,
			Example: `[{"apiVersion":"example.com/v1","kind":"Widget","name":"w","conditions":[{"type":"Ready"}]}]`,
			Doc: Doc{
				Format: "`[{\"apiVersion\",\"kind\",\"name\",\"namespace\"?,\"fields\"?:[{\"key\":\"a.b\",\"value\":...}],\"conditions\"?:[{\"type\",\"status\"?}]}]`",
				ResolvedWhen: "every field matches (compared as JSON: `\"3\"` matches 3, `true` matches true) and every condition has " +
					"its status (default `True`); any served kind, core `v1` included (in gate mode, the contract's kinds and those its operator allows); reasons name the field " +
					"but never its value, actual or wanted",
				Value: "JSON as `DEPENDENCY_CUSTOM_RESOURCE`",
			},
		}, func(s *Spec) *[]CustomResourceRef { return &s.CustomResources }, ParseCustomResourcesJSON, customResourceItem),
		jsonArray(Kind{
			Annotation: "dependency-cel", Env: EnvCEL, API: true, NodeFree: true,
			Example: `[{"apiVersion":"apps/v1","kind":"Deployment","name":"api","expression":"object.status.readyReplicas >= 2"}]`,
			Doc: Doc{
				Format: "`[{\"apiVersion\",\"kind\",\"name\",\"namespace\"?,\"expression\"}]`",
				ResolvedWhen: "the object exists and the CEL expression over `object` (the object as JSON) is true; an error " +
					"(a missing field: `no such key`) reads as not ready; at most 16 expressions of 2 KiB each, each evaluation bounded in cost and to 100 ms; " +
					"`matches` only with a string literal pattern (at most 8 calls, patterns of 256 bytes and about 1,000 compiled instructions together, compiled once; " +
					"a string too long for its pattern is an error); any served kind but `v1` Secret (in gate mode, the contract's kinds and those its operator allows); in gate mode the controller sees Pods, Jobs and CRDs without `spec` and workloads without pod template, all of them without annotations",
				Value: "JSON as `DEPENDENCY_CEL_JSON`; an expression that does not compile to a bool, costs too much, or breaks the rules of `matches`, is denied",
			},
		}, func(s *Spec) *[]CELRef { return &s.CEL }, ParseCELJSON, celItem),
		list(Kind{
			Annotation: "dependency-rollout", Env: EnvRollouts, API: true, NodeFree: true,
			Example: "deployment/api,other:statefulset/db,daemonset/agent",
			Doc: Doc{
				Format: "`[ns:]deployment\\|statefulset\\|daemonset/name,...`",
				ResolvedWhen: "the rollout is complete, by the rules of `kubectl rollout status`: `observedGeneration` current, " +
					"all desired replicas updated and available (a StatefulSet's ready, up to its `partition`), no old replica left; " +
					"with `OnDelete` updates, all desired replicas ready (or available)",
				Value: "`[ns:]deployment\\|statefulset\\|daemonset/name,...`",
			},
		}, func(s *Spec) *[]WorkloadRef { return &s.Rollouts }, ParseRollouts, func(r WorkloadRef) string { return r.Namespace + ":" + r.Kind + "/" + r.Name }),
		list(Kind{
			Annotation: "dependency-pvc", Env: EnvClaims, API: true, NodeFree: true,
			Example: "data,other:logs",
			Doc: Doc{
				Format:       "`[ns:]name,...`",
				ResolvedWhen: "the PersistentVolumeClaim is `Bound`",
				Value:        "`[ns:]name,...`",
			},
		}, func(s *Spec) *[]ObjectRef { return &s.Claims }, ParseObjectList, objectRefItem),
		list(Kind{
			Annotation: "dependency-configmap", Env: EnvConfigMaps, API: true, NodeFree: true,
			Example: "settings/region,other:ca-bundle",
			Doc: Doc{
				Format:       "`[ns:]name[/key],...`",
				ResolvedWhen: "the ConfigMap exists and, with a key, has it in `data` or `binaryData`",
				Value:        "`[ns:]name[/key],...`",
			},
		}, func(s *Spec) *[]KeyRef { return &s.ConfigMaps }, ParseKeyRefs, keyRefItem),
		list(Kind{
			Annotation: "dependency-secret", Env: EnvSecrets, API: true, GateOptIn: true,
			Example: "db-creds/password,other:tls",
			Doc: Doc{
				Format: "`[ns:]name[/key],...`",
				ResolvedWhen: "the Secret exists and, with a key, has it; read with `get` of that Secret alone, polled, " +
					"never listed or watched; values are never logged, reported or kept",
				Value: "`[ns:]name[/key],...` (gated only with the controller's `--secret-dependencies`)",
			},
		}, func(s *Spec) *[]KeyRef { return &s.Secrets }, ParseKeyRefs, keyRefItem),
		list(Kind{
			Annotation: "dependency-crd", Env: EnvCRDs, API: true, NodeFree: true,
			Example: "certificates.cert-manager.io",
			Doc: Doc{
				Format: "`plural.group,...`",
				ResolvedWhen: "the CustomResourceDefinition is `Established`, and every APIService of its group (`spec.group`) " +
					"is `Available`",
				Value: "`plural.group,...`",
			},
		}, func(s *Spec) *[]string { return &s.CRDs }, ignoreNamespace(ParseCRDs), identity),
		list(Kind{
			Annotation: "dependency-config", Env: EnvConfigs,
			Example: "/etc/app/app.conf",
			Doc: Doc{
				Format: "`/dest/path,...`",
				ResolvedWhen: "`<template-dir>/<base>/<base>` rendered with Go `text/template` (`.IP`, `.IP_ERLANG`, `.HOSTNAME`) " +
					"and written atomically",
				Value: "`/dest/path,...`",
			},
		}, func(s *Spec) *[]string { return &s.Configs }, ignoreNamespace(ParsePaths), identity),
		list(Kind{
			Annotation: "dependency-socket", Env: EnvSockets,
			Example: "/run/openvswitch/db.sock",
			Doc: Doc{
				Format:       "`/path,...`",
				ResolvedWhen: "the path exists and is readable",
				Value:        "`/path,...`",
			},
		}, func(s *Spec) *[]string { return &s.Sockets }, ignoreNamespace(ParsePaths), identity),
		list(Kind{
			Annotation: "dependency-tcp", Env: EnvTCP,
			Example: "mariadb:3306",
			Doc: Doc{
				Format:       "`host:port,...`",
				ResolvedWhen: "a TCP connection succeeds",
				Value:        "`host:port,...`",
			},
		}, func(s *Spec) *[]string { return &s.TCP }, ignoreNamespace(ParseTCP), identity),
		list(Kind{
			Annotation: "dependency-http", Env: EnvHTTP,
			Example: "http://keystone-api:5000/v3",
			Doc: Doc{
				Format: "`url,...`",
				ResolvedWhen: "a GET returns 2xx; redirects are followed only within the URL's scheme, host and port (at most 5); " +
					"a redirect elsewhere is not followed and reads as not ready",
				Value: "`url,...`",
			},
		}, func(s *Spec) *[]string { return &s.HTTP }, ignoreNamespace(ParseHTTP), identity),
	}
}

// KindOf is the kind whose variable is env; false when none is.
func KindOf(env string) (Kind, bool) {
	for _, k := range Kinds() {
		if k.Env == env {
			return k, true
		}
	}
	return Kind{}, false
}

// list completes k, a comma-separated kind whose items are field of a Spec,
// parsed by parse and each written back by item. item's text also tells
// duplicates apart: the parsers drop an item written twice.
func list[T any](k Kind, field func(*Spec) *[]T, parse func(value, namespace string) ([]T, error), item func(T) string) Kind {
	k.parse = func(s *Spec, value string) error {
		items, err := parse(value, s.Namespace)
		*field(s) = items
		return err
	}
	k.count = func(s *Spec) int { return len(*field(s)) }
	k.format = func(s *Spec) string {
		var b strings.Builder
		for i, it := range *field(s) {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(item(it))
		}
		return b.String()
	}
	k.concat = func(dst *Spec, parts []*Spec) {
		items := field(dst)
		seen := make(map[string]bool, len(*items))
		for _, it := range *items {
			seen[item(it)] = true
		}
		for _, p := range parts {
			for _, it := range *field(p) {
				if key := item(it); !seen[key] {
					seen[key] = true
					*items = append(*items, it)
				}
			}
		}
	}
	return k
}

// jsonArray completes k, a kind whose value is a JSON array of objects: its items
// are field of a Spec, parsed by parse, each written back as the JSON object out
// returns.
func jsonArray[T any](k Kind, field func(*Spec) *[]T, parse func(value, namespace string) ([]T, error), out func(T) any) Kind {
	k.JSON = true
	k.parse = func(s *Spec, value string) error {
		items, err := parse(value, s.Namespace)
		*field(s) = items
		return err
	}
	k.count = func(s *Spec) int { return len(*field(s)) }
	k.format = func(s *Spec) string {
		items := *field(s)
		if len(items) == 0 {
			return ""
		}
		objects := make([]any, len(items))
		for i, it := range items {
			objects[i] = out(it)
		}
		return encodeJSON(objects)
	}
	k.concat = func(dst *Spec, parts []*Spec) {
		items := field(dst)
		for _, p := range parts {
			*items = append(*items, *field(p)...)
		}
	}
	return k
}

func identity(s string) string { return s }

func objectRefItem(r ObjectRef) string { return r.Namespace + ":" + r.Name }

func serviceRefItem(r ObjectRef) string {
	if r.MinReady > 1 {
		return objectRefItem(r) + "#" + strconv.Itoa(r.MinReady)
	}
	return objectRefItem(r)
}

func keyRefItem(r KeyRef) string {
	if r.Key == "" {
		return r.Namespace + ":" + r.Name
	}
	return r.Namespace + ":" + r.Name + "/" + r.Key
}

// ignoreNamespace adapts a parser of items that have no namespace.
func ignoreNamespace[T any](parse func(string) ([]T, error)) func(string, string) ([]T, error) {
	return func(value, _ string) ([]T, error) { return parse(value) }
}

// parseJobList parses DEPENDENCY_JOBS: Jobs by name.
func parseJobList(value, namespace string) ([]JobRef, error) {
	refs, err := ParseObjectList(value, namespace)
	if err != nil {
		return nil, err
	}
	var jobs []JobRef
	for _, r := range refs {
		jobs = append(jobs, JobRef{Namespace: r.Namespace, Name: r.Name})
	}
	return jobs, nil
}

// podsNeeds reports each same-node pod item when the resolver cannot know its node.
func podsNeeds(s *Spec, value string) error {
	if s.PodName != "" || s.NodeName != "" {
		return nil
	}
	var errs []error
	for i, p := range s.Pods {
		if p.RequireSameNode {
			errs = append(errs, &ValueError{
				Value:    value,
				Item:     i + 1,
				Problem:  `has "requireSameNode":true, which needs POD_NAME or NODE_NAME, both empty or unset`,
				Expected: "POD_NAME set to " + podNameFromFieldRef + ", or NODE_NAME",
			})
		}
	}
	return errors.Join(errs...)
}
