package spec

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The manuals that hold the kinds' tables, from this package's directory: the
// environment contract is the resolver's, the annotation table the webhook's.
const (
	resolverDoc = "../../../docs/resolver.md"
	webhookDoc  = "../../../docs/webhook.md"
)

// envRow and annotationRow are the manuals' rows of a kind, rendered from its Doc.
func envRow(k Kind) string {
	return "| `" + k.Env + "` | " + k.Doc.Format + " | " + k.Doc.ResolvedWhen + " |"
}

func annotationRow(k Kind) string {
	return "| `entrypoint.io/" + k.Annotation + "` | " + k.Doc.Value + " |"
}

// section is the text under the heading that starts with heading, up to the next
// heading of the same or a higher level.
func section(t *testing.T, path, doc, heading string) string {
	t.Helper()
	start := strings.Index(doc, "\n"+heading)
	if start < 0 {
		t.Fatalf("%s has no heading %q", path, heading)
	}
	level := strings.Index(heading, " ") // the number of '#'
	body := doc[start+1+len(heading):]
	for off := 0; off < len(body); {
		line, _, _ := strings.Cut(body[off:], "\n")
		if hashes := len(line) - len(strings.TrimLeft(line, "#")); hashes > 0 && hashes <= level && strings.HasPrefix(line[hashes:], " ") {
			return body[:off]
		}
		off += len(line) + 1
	}
	return body
}

// rowsStartingWith are the lines of text that start with prefix, in order.
func rowsStartingWith(text, prefix string) []string {
	var rows []string
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			rows = append(rows, strings.TrimRight(line, " "))
		}
	}
	return rows
}

// The manuals' env and annotation tables have exactly one row per kind, in the
// table's order, reading as the kind's Doc renders it: a kind added, removed or
// documented differently in Kinds fails here until docs/resolver.md and
// docs/webhook.md say the same.
func TestREADMETablesAreTheKinds(t *testing.T) {
	tables := []struct {
		path, heading, rowPrefix string
		row                      func(Kind) string
	}{
		{resolverDoc, "## Environment contract", "| `DEPENDENCY_", envRow},
		{webhookDoc, "## Annotate a pod template, get the resolver injected", "| `entrypoint.io/dependency-", annotationRow},
	}
	for _, tt := range tables {
		t.Run(tt.heading, func(t *testing.T) {
			raw, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatalf("reading %s: %v", tt.path, err)
			}
			var want []string
			for _, k := range Kinds() {
				want = append(want, tt.row(k))
			}
			got := rowsStartingWith(section(t, tt.path, string(raw), tt.heading), tt.rowPrefix)
			if slices.Equal(got, want) {
				return
			}
			for _, row := range got {
				if !slices.Contains(want, row) {
					t.Errorf("%s: row matches no kind of spec.Kinds (or reads differently):\n%s", tt.path, row)
				}
			}
			for _, row := range want {
				if !slices.Contains(got, row) {
					t.Errorf("%s lacks the row of a kind, which would read:\n%s", tt.path, row)
				}
			}
			if !t.Failed() {
				t.Errorf("%s: rows are not in the order of spec.Kinds; want\n%s", tt.path, strings.Join(want, "\n"))
			}
		})
	}
}

// The table itself: names unique and in the documented families, every kind
// documented, a superseded kind present and explained, and each kind's parser
// filling only its own items.
func TestKindsTable(t *testing.T) {
	kinds := Kinds()
	envs := map[string]bool{}
	annotations := map[string]bool{}
	for _, k := range kinds {
		if envs[k.Env] || annotations[k.Annotation] {
			t.Errorf("%s / %s: variable or annotation twice in the table", k.Env, k.Annotation)
		}
		envs[k.Env], annotations[k.Annotation] = true, true
		if !strings.HasPrefix(k.Env, "DEPENDENCY_") || !strings.HasPrefix(k.Annotation, "dependency-") {
			t.Errorf("%s / %s: want a DEPENDENCY_ variable and a dependency- annotation", k.Env, k.Annotation)
		}
		if k.Doc.Format == "" || k.Doc.ResolvedWhen == "" || k.Doc.Value == "" {
			t.Errorf("%s: undocumented: %+v", k.Env, k.Doc)
		}
		if k.Example == "" {
			t.Errorf("%s: no example", k.Env)
		} else if _, err := FromEnv(lookupIn(map[string]string{EnvPodName: "app-0", k.Env: k.Example})); err != nil {
			t.Errorf("%s: example %s: %v", k.Env, k.Example, err)
		}
		if k.parse == nil || k.format == nil || k.concat == nil || k.count == nil {
			t.Errorf("%s: made without list or jsonArray", k.Env)
		}
		if got, ok := KindOf(k.Env); !ok || got.Annotation != k.Annotation {
			t.Errorf("KindOf(%s) = %q, %v", k.Env, got.Annotation, ok)
		}
	}
	for _, k := range kinds {
		if k.Supersedes != "" && (!envs[k.Supersedes] || k.Conflict == "") {
			t.Errorf("%s supersedes %q: want a kind of the table, and Conflict said", k.Env, k.Supersedes)
		}
	}
	if _, ok := KindOf(EnvNamespace); ok {
		t.Error("KindOf(NAMESPACE) found a kind")
	}
}

// Format writes what Parse reads back as the same items, namespaces spelled out,
// and Concat of parsed parts is the parse of the joined value.
func TestKindsFormatParsesBack(t *testing.T) {
	tests := []struct {
		env, value, formatted string
	}{
		{EnvServices, " mariadb , openstack:keystone,mariadb", "ns:mariadb,openstack:keystone"},
		{EnvServices, "mariadb#3,openstack:keystone#1,cache#02", "ns:mariadb#3,openstack:keystone,ns:cache#2"},
		{EnvJobs, "db-sync,other:init", "ns:db-sync,other:init"},
		{EnvJobsJSON, `[{"labels":{"app":"x"}},{"name":"a","namespace":"b"}]`, `[{"labels":{"app":"x"},"namespace":"ns"},{"name":"a","namespace":"b"}]`},
		{EnvDaemonSets, "ovs", "ns:ovs"},
		{EnvContainers, "a, b", "a,b"},
		{EnvPodsJSON, `[{"requireSameNode":true,"labels":{"k":"v"}},{"labels":{"k":"w"},"namespace":"o"}]`,
			`[{"labels":{"k":"v"},"namespace":"ns","requireSameNode":true},{"labels":{"k":"w"},"namespace":"o"}]`},
		{EnvCustomResources, `[{"kind":"Widget","apiVersion":"example.com/v1","name":"w","fields":[{"value": "a&b","key":"status.x"}],"conditions":[{"type":"Ready"}]}]`,
			`[{"apiVersion":"example.com/v1","conditions":[{"status":"True","type":"Ready"}],"fields":[{"key":"status.x","value":"a&b"}],"kind":"Widget","name":"w","namespace":"ns"}]`},
		{EnvConfigs, "/etc/a.conf", "/etc/a.conf"},
		{EnvSockets, "/run/a.sock", "/run/a.sock"},
		{EnvTCP, "db:3306", "db:3306"},
		{EnvHTTP, "http://h/x?a=1&b=2", "http://h/x?a=1&b=2"},
		{EnvRollouts, "deployment/api, other:statefulset/db,daemonset/agent,deployment/api", "ns:deployment/api,other:statefulset/db,ns:daemonset/agent"},
		{EnvClaims, "data,other:logs", "ns:data,other:logs"},
		{EnvConfigMaps, "settings/region,other:ca,settings", "ns:settings/region,other:ca,ns:settings"},
		{EnvSecrets, "db-creds/password,other:tls/tls.crt", "ns:db-creds/password,other:tls/tls.crt"},
		{EnvCRDs, "certificates.cert-manager.io", "certificates.cert-manager.io"},
		{EnvServices, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			k, ok := KindOf(tt.env)
			if !ok {
				t.Fatalf("no kind %s", tt.env)
			}
			parsed := &Spec{Namespace: "ns"}
			if err := k.Parse(parsed, tt.value); err != nil {
				t.Fatalf("Parse(%q): %v", tt.value, err)
			}
			got := k.Format(parsed)
			if got != tt.formatted {
				t.Fatalf("Format = %s\nwant     %s", got, tt.formatted)
			}
			again := &Spec{Namespace: "elsewhere"} // every namespace is spelled out
			if err := k.Parse(again, got); err != nil {
				t.Fatalf("Parse(Format(s)): %v", err)
			}
			again.Namespace = "ns"
			if !reflect.DeepEqual(again, parsed) {
				t.Errorf("Parse(Format(s)) = %+v\nwant %+v", again, parsed)
			}
			joined := &Spec{Namespace: "ns"}
			k.Concat(joined, []*Spec{parsed, again})
			if k.JSON {
				return // JSON items are not deduplicated, as their parsers do not
			}
			if f := k.Format(joined); f != tt.formatted {
				t.Errorf("Concat of the value parsed twice = %s, want %s (duplicates dropped)", f, tt.formatted)
			}
		})
	}
}
