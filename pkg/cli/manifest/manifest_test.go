package manifest

import (
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const multi = `# leading comment
apiVersion: v1
kind: ConfigMap
metadata:
  name: c
---
---
# empty documents are skipped
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    metadata:
      annotations:
        other: x
        entrypoint.io/dependency-service: "a,,b"
    spec:
      containers:
        - name: app
          image: app
        - name: side
          image: side
          env:
            - name: A
              value: b
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata:
      name: p
    spec:
      containers: [{name: c, image: i}]
`

func TestParse(t *testing.T) {
	docs, err := Parse("f.yaml", []byte(multi))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, d.Kind()+"/"+d.Name()+"@"+strconv.Itoa(d.Line))
	}
	want := []string{"ConfigMap/c@2", "Deployment/web@9", "Pod/p@33"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("documents %v, want %v", got, want)
	}
}

func TestLineOf(t *testing.T) {
	docs, err := Parse("f.yaml", []byte(multi))
	if err != nil {
		t.Fatal(err)
	}
	web := docs[1]
	lines := strings.Split(multi, "\n")
	tests := []struct {
		path string
		want string // text on the line
	}{
		{"metadata.annotations[entrypoint.io/dependency-service]", `entrypoint.io/dependency-service: "a,,b"`},
		{"metadata.annotations[entrypoint.io/missing]", "annotations:"},
		{"spec.containers[1].env[0]", "- name: A"},
		{"spec.containers[0].command", "- name: app"},
		{"spec.containers[7]", "containers:"},
		{"spec.initContainers[0].name", "spec:"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			l := web.LineOf(tt.path)
			if l < 1 || !strings.Contains(lines[l-1], tt.want) {
				t.Errorf("LineOf(%s) = %d (%q), want the line of %q", tt.path, l, lines[max(l-1, 0)], tt.want)
			}
		})
	}
}

func TestParsePath(t *testing.T) {
	got := parsePath("metadata.annotations[entrypoint.io/a.b].x[3]")
	want := []segment{{key: "metadata", index: -1}, {key: "annotations", index: -1}, {key: "entrypoint.io/a.b", index: -1}, {key: "x", index: -1}, {index: 3}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsePath = %+v, want %+v", got, want)
	}
}

func TestPodAndSetPod(t *testing.T) {
	docs, err := Parse("f.yaml", []byte(multi))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := docs[0].Pod(); ok {
		t.Error("a ConfigMap holds no pod")
	}
	pod, ok, err := docs[1].Pod()
	if err != nil || !ok || len(pod.Spec.Containers) != 2 || pod.Annotations["other"] != "x" {
		t.Fatalf("Pod() = %+v, %v, %v", pod, ok, err)
	}
	pod.Labels = map[string]string{"injected": "yes"}
	if err := docs[1].SetPod(pod); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Write(&out, docs[1:2]); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "injected: \"yes\"") || !strings.Contains(out.String(), "kind: Deployment") {
		t.Errorf("the Deployment's template was not replaced:\n%s", out.String())
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"- a\n- b\n", "a: [\n"} {
		if _, err := Parse("bad.yaml", []byte(in)); err == nil || !strings.Contains(err.Error(), "bad.yaml") {
			t.Errorf("Parse(%q) = %v, want an error naming the file", in, err)
		}
	}
}
