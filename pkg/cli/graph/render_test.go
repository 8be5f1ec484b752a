package graph

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// hostile holds what must never reach a terminal raw: a screen clear, a
// carriage return, a right-to-left override, a C1 CSI as a character and as a
// lone byte (not UTF-8), and a line break.
const hostile = "x\x1b[2J\r\u202e\u009b\x9b\ny"

// rawRunes are the characters of hostile that a renderer must not write.
const rawRunes = "\x1b\r\u202e\u009b"

// hostileObjects are objects whose owner name, label values and CEL expression
// hold hostile: a pod owned by a controller named so, carrying such labels and
// waiting for pods by them; a Deployment whose CEL expression does not
// compile, so that the webhook's denial (with CEL's error text, which repeats
// the expression) is its problem.
func hostileObjects() Objects {
	return Objects{
		Deployments: []appsv1.Deployment{
			deployment("web", app("web"), map[string]string{"entrypoint.io/dependency-cel": `[{"apiVersion":"apps/v1","kind":"Deployment","name":"db",` +
				`"expression":"object.status == '\u001b[2J\r\u202e\u009b'"}]`}),
		},
		Pods: []corev1.Pod{{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"app": hostile},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "Thing", Name: hostile, Controller: ptrTrue()}}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{
				{Name: "DEPENDENCY_SERVICE", Value: "db"},
			}}}},
		}},
		Services: []corev1.Service{svc("db", map[string]string{"app": hostile})},
	}
}

// hostileGraph has hostile in every text a renderer draws.
func hostileGraph() *Graph {
	owner := "thing ns/" + hostile
	dep := "service ns/" + hostile
	return &Graph{
		Nodes: []Node{
			{ID: owner, Kind: KindWorkload, Problem: "cannot read: " + hostile, InCycle: true},
			{ID: dep, Kind: KindService, Unsatisfiable: "its selector app=" + hostile + " matches no workload", InCycle: true},
			{ID: "pods ns/[app=" + hostile + "]", Kind: KindPods, Note: "note " + hostile},
			{ID: "cel apps/v1 Deployment ns/" + hostile, Kind: KindCEL, Note: "expression " + hostile + " does not compile"},
		},
		Edges: []Edge{
			{From: owner, To: dep, Kind: EdgeWaitsFor, InCycle: true},
			{From: dep, To: owner, Kind: EdgeSatisfiedBy, InCycle: true},
			{From: owner, To: "pods ns/[app=" + hostile + "]", Kind: EdgeWaitsFor},
			{From: owner, To: "cel apps/v1 Deployment ns/" + hostile, Kind: EdgeWaitsFor},
		},
		Cycles: []Cycle{{Members: []string{owner, dep}, Message: owner + " waits for " + dep + ", served by " + owner}},
	}
}

var renderers = []struct {
	format string
	write  func(*bytes.Buffer, *Graph) error
	// shown is how escaped text shows in the format.
	shown func(string) string
}{
	{"tree", func(b *bytes.Buffer, g *Graph) error { return WriteTree(b, g) }, func(s string) string { return s }},
	{"dot", func(b *bytes.Buffer, g *Graph) error { return WriteDOT(b, g) }, func(s string) string { return strings.ReplaceAll(s, `\`, `\\`) }},
	{"mermaid", func(b *bytes.Buffer, g *Graph) error { return WriteMermaid(b, g) }, func(s string) string { return s }},
}

// TestRenderersEscapeControlCharacters: whatever the objects' names, labels,
// expressions and messages hold, the tree, DOT and Mermaid outputs hold no
// control or bidirectional character and no byte that is not UTF-8, and still
// show the text, escaped.
func TestRenderersEscapeControlCharacters(t *testing.T) {
	o := hostileObjects()
	graphs := []struct {
		name string
		g    *Graph
		// want is escaped text each output shows.
		want []string
	}{
		{name: "built from objects", g: Build(Workloads(context.Background(), o), o, func(spec.CustomResourceRef) (bool, string) { return false, "" }),
			want: []string{`thing ns/x\x1b[2J\r\u202e\u009b\x9b\ny`}},
		{name: "every field", g: hostileGraph(), want: []string{`thing ns/x\x1b[2J\r\u202e\u009b\x9b\ny`, `service ns/x\x1b[2J\r\u202e\u009b\x9b\ny`}},
	}
	for _, gt := range graphs {
		for _, r := range renderers {
			t.Run(gt.name+"/"+r.format, func(t *testing.T) {
				var b bytes.Buffer
				if err := r.write(&b, gt.g); err != nil {
					t.Fatal(err)
				}
				out := b.Bytes()
				if bytes.ContainsAny(out, rawRunes) || !utf8.Valid(out) {
					t.Errorf("raw control, bidirectional or non-UTF-8 characters in the output:\n%q", out)
				}
				for i, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
					if !safetext.Safe(line) {
						t.Errorf("line %d is not safe: %q", i+1, line)
					}
				}
				for _, w := range gt.want {
					if w = r.shown(w); !strings.Contains(b.String(), w) {
						t.Errorf("output without %s:\n%s", w, out)
					}
				}
			})
		}
	}
}

func TestDOTQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"deployment ns/web", `"deployment ns/web"`},
		{`say "hi"`, `"say \"hi\""`},
		{`back\slash`, `"back\\slash"`},
		{`ends in \`, `"ends in &#92;"`},
		{`quote after backslash \"`, `"quote after backslash \\\""`},
		{"esc \x1b[2J\r", `"esc \\x1b[2J\\r"`},
		{"bidi \u202e, c1 \u009b, byte \x9b", `"bidi \\u202e, c1 \\u009b, byte \\x9b"`},
		{"line\nbreak", `"line\\nbreak"`},
	}
	for _, tt := range tests {
		got := dotQuote(tt.in)
		if got != tt.want {
			t.Errorf("dotQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if !safetext.Safe(got) {
			t.Errorf("dotQuote(%q) = %q is not safe", tt.in, got)
		}
	}
}

// Two names that escape alike (a raw ESC, the text \x1b) are two nodes.
func TestDOTIDs(t *testing.T) {
	nodes := []Node{{ID: `pod ns/a\x1b`}, {ID: "pod ns/a\x1b"}, {ID: `pod ns/a\x1b #1`}, {ID: "pod ns/b\r"}}
	ids := dotIDs(nodes)
	want := map[string]string{
		`pod ns/a\x1b`:    `"pod ns/a\\x1b"`,
		"pod ns/a\x1b":    `"pod ns/a\\x1b #2"`, // #1 is another's
		`pod ns/a\x1b #1`: `"pod ns/a\\x1b #1"`,
		"pod ns/b\r":      `"pod ns/b\\r"`,
	}
	for name, id := range want {
		if ids[name] != id {
			t.Errorf("id of %q = %s, want %s", name, ids[name], id)
		}
	}
	g := &Graph{Nodes: nodes, Edges: []Edge{{From: "pod ns/a\x1b", To: `pod ns/a\x1b`, Kind: EdgeWaitsFor}}}
	var b bytes.Buffer
	if err := WriteDOT(&b, g); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `  "pod ns/a\\x1b #2" -> "pod ns/a\\x1b" [];`) {
		t.Errorf("the edge does not join the two nodes:\n%s", b.String())
	}
}

func TestMermaidLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"pods ns/[app=web]", "pods ns/[app=web]"},
		{`say "hi"`, "say #quot;hi#quot;"},
		{"a#quot;b", "a#35;quot;b"},
		{"<b>bold</b>", "#lt;b#gt;bold#lt;/b#gt;"},
		{"`md`", "#96;md#96;"},
		{"esc \x1b[2J\r\u202e\u009b\x9b\n", `esc \x1b[2J\r\u202e\u009b\x9b\n`},
	}
	for _, tt := range tests {
		got := mermaidLabel(tt.in)
		if got != tt.want {
			t.Errorf("mermaidLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !safetext.Safe(got) {
			t.Errorf("mermaidLabel(%q) = %q is not safe", tt.in, got)
		}
	}
}
