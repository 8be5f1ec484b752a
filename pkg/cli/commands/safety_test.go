package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/why"
)

// hostile holds what must never reach a terminal raw: a screen clear, a
// carriage return, a right-to-left override, a C1 CSI as a character and as a
// lone byte (not UTF-8), and a line break.
const hostile = "x\x1b[2J\r\u202e\u009b\x9b\ny"

// rawRunes are the characters of hostile that no output may hold.
const rawRunes = "\x1b\r\u202e\u009b"

// checkSafe fails unless out holds no control or bidirectional character but
// line breaks, and only UTF-8.
func checkSafe(t *testing.T, what, out string) {
	t.Helper()
	if strings.ContainsAny(out, rawRunes) || !utf8.ValidString(out) {
		t.Errorf("%s: raw control, bidirectional or non-UTF-8 characters:\n%q", what, out)
	}
	for i, line := range strings.Split(out, "\n") {
		if !safetext.Safe(line) {
			t.Errorf("%s: line %d is not safe: %q", what, i+1, line)
		}
	}
}

// hostileReports are reports of why with hostile in every text: those the
// explainer makes of a pod with such a name, owner, labels and condition, and
// of a pod template whose CEL expression does not compile; and one written by
// hand with a CEL dependency, its reason and a problem of two lines.
func hostileReports(t *testing.T) []why.Report {
	t.Helper()
	ctx := context.Background()
	yes := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-" + hostile, Namespace: "ns", Labels: map[string]string{"app": hostile},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: hostile, Controller: &yes}}},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: api.ConditionType, Status: corev1.ConditionFalse,
			Reason: "Waiting" + hostile, Message: "waiting for cel apps/v1 Deployment ns/db: " + hostile}}},
	}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}, Annotations: map[string]string{
			"entrypoint.io/dependency-cel": `[{"apiVersion":"apps/v1","kind":"Deployment","name":"db","expression":"object.status == '\u001b[2J\r\u202e\u009b'"}]`}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app", Command: []string{"/app"}}}},
	}
	x := why.Explainer{} // neither report needs the API
	return []why.Report{
		x.Explain(ctx, pod),
		x.ExplainTemplate(ctx, "deployment", "ns", "web", tmpl),
		{Namespace: "ns", Pod: "p", Source: `from the DEPENDENCY_* environment of container "init"`, Gated: true, HeldByGate: true,
			Dependencies: []why.Dependency{
				{Name: "cel apps/v1 Deployment ns/" + hostile, State: why.StateWaiting, Reason: "object.status == '" + hostile + "' is false"},
				{Name: "service ns/db", State: why.StateUnknown, Reason: "cannot read: " + hostile},
			},
			Condition: &why.Condition{Status: "False", Reason: "Waiting", Message: hostile},
			Blocked:   true, Problem: "first " + hostile + "\nsecond line"},
	}
}

// TestWhyOutputEscapesControlCharacters: why's table, JSON and YAML hold no
// raw control or bidirectional character; the table shows them escaped, JSON
// and YAML keep the values.
func TestWhyOutputEscapesControlCharacters(t *testing.T) {
	reports := hostileReports(t)
	if reports[1].Problem == "" {
		t.Fatalf("the template's CEL expression was not denied: %+v", reports[1])
	}
	for _, format := range []string{"", "json", "yaml"} {
		t.Run("format "+format, func(t *testing.T) {
			var b bytes.Buffer
			if err := printReports(&b, format, reports); err != nil {
				t.Fatal(err)
			}
			checkSafe(t, "why -o "+format, b.String())
			switch format {
			case "":
				for _, want := range []string{
					`pod ns/web-x\x1b[2J\r\u202e\u009b\x9b\ny: dependencies none`,
					`cel apps/v1 Deployment ns/x\x1b[2J\r\u202e\u009b\x9b\ny  waiting  object.status == 'x\x1b[2J`,
					`(Waitingx\x1b[2J\r\u202e\u009b\x9b\ny): waiting for cel apps/v1 Deployment ns/db: x\x1b[2J`,
					// A problem keeps its lines, indented.
					"problem: first x\\x1b[2J\\r\\u202e\\u009b\\x9b\n  y\n  second line\n",
				} {
					if !strings.Contains(b.String(), want) {
						t.Errorf("output without %q:\n%s", want, b.String())
					}
				}
			case "json", "yaml":
				var back []why.Report
				var err error
				if format == "json" {
					err = json.Unmarshal(b.Bytes(), &back)
				} else {
					err = sigsyaml.Unmarshal(b.Bytes(), &back)
				}
				if err != nil {
					t.Fatalf("reading back: %v\n%s", err, b.String())
				}
				if want := strings.ToValidUTF8(reports[0].Condition.Message, "\ufffd"); len(back) != 3 || back[0].Condition == nil || back[0].Condition.Message != want {
					t.Errorf("read back %+v; want the condition message %q", back, want)
				}
			}
		})
	}
}

// hostileManifest has hostile in a workload's name and in a CEL expression,
// written with YAML's escapes.
const hostileManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: "web\e[2J\r\u202e\x9b\ny"
  namespace: ns
spec:
  template:
    metadata:
      annotations:
        entrypoint.io/dependency-cel: '[{"apiVersion":"apps/v1","kind":"Deployment","name":"db","expression":"object.status == \"\u001b[2J\r\u202e\u009b\""}]'
        entrypoint.io/dependency-service: "Bad\e[2J"
    spec:
      containers:
      - name: app
        image: app
        command: ["/app"]
`

// TestLintAndInjectEscapeControlCharacters: lint's lines, JSON and YAML, and
// inject's manifests and messages, hold no raw control or bidirectional
// character.
func TestLintAndInjectEscapeControlCharacters(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"lint", "-f", "-"}, 1},
		{[]string{"lint", "-f", "-", "-o", "json"}, 1},
		{[]string{"lint", "-f", "-", "-o", "yaml"}, 1},
		{[]string{"inject", "-f", "-", "--image", goldenImage}, 1},
		{[]string{"inject", "-f", "-", "--image", goldenImage, "-o", "json"}, 1},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, code := run(t, hostileManifest, tt.args...)
			if code != tt.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
			checkSafe(t, "stdout", out)
			checkSafe(t, "stderr", errOut)
			shown := false
			for _, escaped := range []string{`web\x1b[2J\r\u202e\u009b\ny`, `web\u001b[2J\r\u202e\u009b\ny`, `web\e[2J\r\u202e\x9B\ny`} {
				shown = shown || strings.Contains(out+errOut, escaped)
			}
			if !shown {
				t.Errorf("the name is not shown escaped:\n%s\n--- stderr\n%s", out, errOut)
			}
		})
	}
	// inject's manifest keeps the name, as YAML reads it.
	out, _, _ := run(t, hostileManifest, "inject", "-f", "-", "--image", goldenImage)
	var obj struct {
		Metadata struct{ Name string } `json:"metadata"`
	}
	if err := sigsyaml.Unmarshal([]byte(out), &obj); err != nil || obj.Metadata.Name != "web\x1b[2J\r\u202e\u009b\ny" {
		t.Errorf("inject's manifest: name %q (%v), want the hostile one", obj.Metadata.Name, err)
	}
}

// TestErrorsEscapeControlCharacters: an error, which may quote an object, is
// printed escaped, its lines indented.
func TestErrorsEscapeControlCharacters(t *testing.T) {
	for _, err := range []error{errors.New(hostile), &ExitError{Code: ExitFailure, Err: errors.New("finding " + hostile)}} {
		var out, errOut bytes.Buffer
		streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
		root := &cobra.Command{Use: "x", SilenceErrors: true, SilenceUsage: true, RunE: func(*cobra.Command, []string) error { return err }}
		if code := execute(root, streams, nil); code != ExitFailure {
			t.Errorf("%v: exit status %d", err, code)
		}
		checkSafe(t, "stderr", errOut.String())
		if !strings.Contains(errOut.String(), `x\x1b[2J\r\u202e\u009b\x9b`+"\n  y\n") {
			t.Errorf("stderr %q", errOut.String())
		}
	}
}

// testControlCharacters: on a real API server, a pod whose controller's name
// and condition message hold hostile, and a Deployment whose CEL expression
// does: why and every format of graph print none of it raw.
func testControlCharacters(t *testing.T, c *cluster) {
	ns := c.env.Namespace(t)
	yes := true
	pod := injectedPod(t, ns, "owned", map[string]string{"app": "owned"}, map[string]string{"entrypoint.io/dependency-service": "db"})
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "Thing", Name: hostile, UID: "0b9c2f5e-0000-4000-8000-000000000001", Controller: &yes}}
	c.create(t, pod, deployment(ns, "celweb", map[string]string{"app": "celweb"}, map[string]string{
		"entrypoint.io/dependency-cel": `[{"apiVersion":"apps/v1","kind":"Deployment","name":"db","expression":"object.status == '\u001b[2J\r\u202e\u009b'"}]`}))
	c.setCondition(t, ns, "owned", corev1.ConditionFalse, api.ReasonWaiting, "waiting for "+hostile)

	for _, args := range [][]string{
		{"why", "owned"}, {"why", "owned", "-o", "json"}, {"why", "owned", "-o", "yaml"}, {"why", "deployment/celweb"},
		{"graph"}, {"graph", "-o", "dot"}, {"graph", "-o", "mermaid"}, {"graph", "-o", "json"}, {"graph", "-o", "yaml"},
		{"status"}, {"status", "-o", "json"}, {"status", "-o", "yaml"},
	} {
		out, errOut, code := c.kubectl(t, ns, args...)
		what := strings.Join(args, " ")
		if code != ExitProblems {
			t.Errorf("%s: exit status %d, want %d; stderr: %s", what, code, ExitProblems, errOut)
		}
		checkSafe(t, what, out)
		checkSafe(t, what+": stderr", errOut)
	}
	out, _, _ := c.kubectl(t, ns, "why", "owned")
	if want := `(Waiting): waiting for x\x1b[2J\r\u202e\u009b`; !strings.Contains(out, want) {
		t.Errorf("why: no %s in\n%s", want, out)
	}
	out, _, _ = c.kubectl(t, ns, "graph")
	if want := `thing NS/x\x1b[2J\r\u202e\u009b`; !strings.Contains(out, want) {
		t.Errorf("graph: no %s in\n%s", want, out)
	}
	out, _, _ = c.kubectl(t, ns, "status")
	if want := `thing/x\x1b[2J\r\u202e\u009b`; !strings.Contains(out, want) {
		t.Errorf("status: no %s in\n%s", want, out)
	}
}

// TestWhySummaryEscapesControlCharacters: why's summary of a workload, its
// table (with each pod's report) and its JSON and YAML, hold no raw control or
// bidirectional character.
func TestWhySummaryEscapesControlCharacters(t *testing.T) {
	s := why.Summarize("deployment ns/"+hostile, hostileReports(t))
	for _, format := range []string{"", "json", "yaml"} {
		t.Run("format "+format, func(t *testing.T) {
			var b bytes.Buffer
			if err := printSummary(&b, format, true, s); err != nil {
				t.Fatal(err)
			}
			checkSafe(t, "why -v -o "+format, b.String())
			if format != "" {
				return
			}
			for _, want := range []string{
				`deployment ns/x\x1b[2J\r\u202e\u009b\x9b\ny: 2 of 3 pods blocked`,
				`cel apps/v1 Deployment ns/x\x1b[2J\r\u202e\u009b\x9b\ny  1/3   object.status == 'x\x1b[2J`,
				// A reason is cut in the table (-v shows it whole).
				`its dependencies, unreadable                             2/3   the webhook would deny its pods: annotation annotation entrypoint.io/dependency-cel: item 1 (Deployment apps/v1 ns/db... | first`,
				`Waitingx\x1b[2J\r\u202e\u009b\x9b\ny on 1`,
			} {
				if !strings.Contains(b.String(), want) {
					t.Errorf("output without %q:\n%s", want, b.String())
				}
			}
		})
	}
}
