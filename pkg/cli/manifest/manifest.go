// Package manifest reads Kubernetes manifests as people write them (files,
// directories, stdin, multi-document YAML or JSON) and finds the pod in each
// object the entrypoint webhook would see: the Pod itself, or the pod template of a
// workload. It keeps each document's YAML tree, so that a problem at a field path
// of that pod can be reported at its line in the file.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/safeout"
)

// Stdin is the name of standard input as an argument of -f.
const Stdin = "-"

// StdinSource is standard input's name in reports.
const StdinSource = "<stdin>"

// Document is one YAML document of a file.
type Document struct {
	Source string // the file as given (or found in a directory), StdinSource for stdin
	Line   int    // the line of the document's first key, 1-based
	Object map[string]any
	root   *yaml.Node // the document's top mapping
}

// Annotations of the object itself (for a workload, not its template's).
func (d *Document) Annotations() map[string]string {
	m, _ := d.Object["metadata"].(map[string]any)
	a, _ := m["annotations"].(map[string]any)
	out := make(map[string]string, len(a))
	for k, v := range a {
		s, _ := v.(string)
		out[k] = s
	}
	return out
}

// Kind is the kind of the document's object, "" when absent.
func (d *Document) Kind() string { s, _ := d.Object["kind"].(string); return s }

// Name is the name of the document's object, "" when absent.
func (d *Document) Name() string { return d.meta("name") }

// Namespace is the namespace of the document's object, "" when absent.
func (d *Document) Namespace() string { return d.meta("namespace") }

func (d *Document) meta(key string) string {
	m, _ := d.Object["metadata"].(map[string]any)
	s, _ := m[key].(string)
	if s == "" && key == "name" {
		s, _ = m["generateName"].(string)
	}
	return s
}

// templatePath is where objects of kind keep their pod: nil for a Pod (the
// object itself); ok is false for kinds without one.
func templatePath(kind string) (path []string, ok bool) {
	switch kind {
	case "Pod":
		return nil, true
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
		return []string{"spec", "template"}, true
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template"}, true
	}
	return nil, false
}

// HoldsPod tells whether the document's kind is a Pod or a workload with a pod template.
func (d *Document) HoldsPod() bool {
	_, ok := templatePath(d.Kind())
	return ok
}

// TemplatePath is where the pod is in the object: nil for a Pod.
func (d *Document) TemplatePath() []string { p, _ := templatePath(d.Kind()); return p }

// Pod is the pod the webhook would be asked about for this object: the Pod, or a
// pod made of the workload's template (its metadata and spec). ok is false for
// other kinds.
func (d *Document) Pod() (pod *corev1.Pod, ok bool, err error) {
	p, ok := templatePath(d.Kind())
	if !ok {
		return nil, false, nil
	}
	var part any = d.Object
	if p != nil {
		part = lookup(d.Object, p)
		if part == nil {
			return nil, true, fmt.Errorf("%s has no pod template at %s", d.Kind(), strings.Join(p, "."))
		}
	}
	b, err := json.Marshal(part)
	if err != nil {
		return nil, true, fmt.Errorf("encoding the pod of %s: %w", d.Kind(), err)
	}
	pod = &corev1.Pod{}
	if err := json.Unmarshal(b, pod); err != nil {
		return nil, true, fmt.Errorf("reading the pod of %s: %w", d.Kind(), err)
	}
	if p != nil {
		// The pods of a workload get their names from the API server
		// (generateName), as the webhook sees them: the template's is kept.
		pod.APIVersion, pod.Kind = "v1", "Pod"
	}
	return pod, true, nil
}

// SetPod replaces the object's pod by pod: the whole object for a Pod, the
// template's metadata and spec for a workload (its other fields stay).
func (d *Document) SetPod(pod *corev1.Pod) error {
	p, ok := templatePath(d.Kind())
	if !ok {
		return fmt.Errorf("%s holds no pod", d.Kind())
	}
	var part any = pod
	if p != nil {
		part = corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}
	}
	b, err := json.Marshal(part)
	if err != nil {
		return fmt.Errorf("encoding the mutated pod: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("decoding the mutated pod: %w", err)
	}
	if p == nil {
		d.Object = m
		return nil
	}
	parent := lookup(d.Object, p[:len(p)-1]).(map[string]any)
	parent[p[len(p)-1]] = m
	return nil
}

func lookup(obj map[string]any, path []string) any {
	var cur any = obj
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// LineOf is the line of the pod's field at fieldPath (a field.Path string, such as
// metadata.annotations[entrypoint.io/dependency-service] or spec.containers[0].command):
// of the key itself when it is in the file, else of the nearest enclosing field
// that is, else the document's line.
func (d *Document) LineOf(fieldPath string) int {
	node := d.root
	line := d.Line
	for _, k := range d.TemplatePath() {
		if node = child(node, k, -1); node == nil {
			return line
		}
		line = node.Line
	}
	return lineIn(node, line, fieldPath)
}

// ObjectLineOf is LineOf for a field path of the object itself, not of its pod.
func (d *Document) ObjectLineOf(fieldPath string) int { return lineIn(d.root, d.Line, fieldPath) }

// lineIn is the line of fieldPath below node, or of the nearest enclosing field
// found; line is node's.
func lineIn(node *yaml.Node, line int, fieldPath string) int {
	for _, seg := range parsePath(fieldPath) {
		keyLine, value := keyChild(node, seg)
		if value == nil {
			return line
		}
		line, node = keyLine, value
	}
	return line
}

// keyChild is the item of node that seg names, and the line where it is written:
// a mapping key's own line, or a sequence item's.
func keyChild(node *yaml.Node, seg segment) (int, *yaml.Node) {
	switch {
	case node.Kind == yaml.MappingNode && seg.index < 0:
		for i := 0; i+1 < len(node.Content); i += 2 {
			if node.Content[i].Value == seg.key {
				return node.Content[i].Line, node.Content[i+1]
			}
		}
	case node.Kind == yaml.SequenceNode && seg.index >= 0 && seg.index < len(node.Content):
		return node.Content[seg.index].Line, node.Content[seg.index]
	}
	return 0, nil
}

// child is the value of key in mapping n, or item index of sequence n.
func child(n *yaml.Node, key string, index int) *yaml.Node {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
	case yaml.SequenceNode:
		if index >= 0 && index < len(n.Content) {
			return n.Content[index]
		}
	}
	return nil
}

type segment struct {
	key   string // a field name or map key; "" for an index
	index int    // -1 for a key
}

// parsePath splits a field.Path string: names separated by dots, [N] indexes and
// [key] keys (which may hold dots, as annotation keys do).
func parsePath(s string) []segment {
	var segs []segment
	for len(s) > 0 {
		switch s[0] {
		case '.':
			s = s[1:]
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return segs
			}
			inner := s[1:end]
			s = s[end+1:]
			var n int
			if _, err := fmt.Sscanf(inner, "%d", &n); err == nil && fmt.Sprint(n) == inner {
				segs = append(segs, segment{index: n})
			} else {
				segs = append(segs, segment{key: inner, index: -1})
			}
		default:
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			segs = append(segs, segment{key: s[:end], index: -1})
			s = s[end:]
		}
	}
	return segs
}

// Read reads every document of the files and directories in paths ("-" is
// stdin), in order; directories are walked for *.yaml, *.yml and *.json files,
// sorted by name. Documents that are empty (comments only) are left out; a List
// (kind: List, or v1 *List) is expanded into its items.
func Read(paths []string, stdin io.Reader) ([]*Document, error) {
	var docs []*Document
	for _, p := range paths {
		if p == Stdin {
			b, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("reading standard input: %w", err)
			}
			d, err := Parse(StdinSource, b)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
			continue
		}
		files, err := expand(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("reading manifests: %w", err)
			}
			d, err := Parse(f, b)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
		}
	}
	return docs, nil
}

// expand is p itself when it is a file, or the manifests below it when a directory.
func expand(p string) ([]string, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("reading manifests: %w", err)
	}
	if !info.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			if !e.IsDir() {
				files = append(files, path)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading manifests in %s: %w", p, err)
	}
	slices.Sort(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("reading manifests: directory %s holds no .yaml, .yml or .json file", p)
	}
	return files, nil
}

// Parse splits b, from source, into its documents.
func Parse(source string, b []byte) ([]*Document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []*Document
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: not valid YAML (after document %d): %w", source, len(docs), err)
		}
		if len(n.Content) == 0 || n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null" {
			continue
		}
		root := n.Content[0]
		if root.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: a document is not an object (a YAML mapping)", source, root.Line)
		}
		obj, err := toObject(root)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", source, root.Line, err)
		}
		d := &Document{Source: source, Line: root.Line, Object: obj, root: root}
		if items := child(root, "items", -1); items != nil && items.Kind == yaml.SequenceNode && strings.HasSuffix(d.Kind(), "List") {
			for _, it := range items.Content {
				if it.Kind != yaml.MappingNode {
					continue
				}
				o, err := toObject(it)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: %w", source, it.Line, err)
				}
				docs = append(docs, &Document{Source: source, Line: it.Line, Object: o, root: it})
			}
			continue
		}
		docs = append(docs, d)
	}
}

// toObject is the JSON object of a YAML node, as the API server would read it.
func toObject(n *yaml.Node) (map[string]any, error) {
	b, err := yaml.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("re-encoding the document: %w", err)
	}
	j, err := sigsyaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	var obj map[string]any
	if err := json.Unmarshal(j, &obj); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	return obj, nil
}

// Write writes the documents' objects to w as YAML documents separated by "---",
// their control and bidirectional characters as YAML escapes (safeout.YAML):
// the same objects, which cannot drive a terminal.
func Write(w io.Writer, docs []*Document) error {
	for i, d := range docs {
		b, err := safeout.YAML(d.Object)
		if err != nil {
			return fmt.Errorf("%s:%d: encoding %s: %w", d.Source, d.Line, d.Kind(), err)
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
