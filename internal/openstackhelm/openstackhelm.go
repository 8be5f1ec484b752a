// Package openstackhelm serves, to tests, real openstack-helm charts as Helm
// renders them (testdata/README.md says from where): the installed base that
// adoption must take over with no chart change.
package openstackhelm

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Namespace is the namespace the charts were rendered for.
const Namespace = "openstack"

//go:embed testdata/*.yaml
var rendered embed.FS

// Charts are the rendered charts, infrastructure first, in the order an
// operator installs them.
func Charts() []string {
	return []string{"mariadb", "rabbitmq", "memcached", "keystone", "glance", "placement", "nova", "neutron"}
}

// Objects decodes every object of chart's rendered manifests, in file order.
func Objects(chart string) ([]*unstructured.Unstructured, error) {
	raw, err := rendered.ReadFile("testdata/" + chart + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("openstack-helm chart %q is not in testdata: %w", chart, err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("decoding openstack-helm chart %s, object %d: %w", chart, len(objs)+1, err)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

// Workload is one pod template of a chart: that of a Deployment, StatefulSet,
// DaemonSet, Job or CronJob, or a bare Pod (Helm test pods).
type Workload struct {
	Chart string
	Kind  string
	Name  string
	// Pod is a pod as its controller would create it from the template, in
	// Namespace, with no name yet.
	Pod *corev1.Pod
}

// templatePath is where kind keeps its pod template (nil: the object is the
// pod), and whether it has one.
func templatePath(kind string) ([]string, bool) {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "Job":
		return []string{"spec", "template"}, true
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template"}, true
	case "Pod":
		return nil, true
	}
	return nil, false
}

// Workloads lists the pod templates of chart, in file order.
func Workloads(chart string) ([]Workload, error) {
	objs, err := Objects(chart)
	if err != nil {
		return nil, err
	}
	var out []Workload
	for _, o := range objs {
		path, ok := templatePath(o.GetKind())
		if !ok {
			continue
		}
		tmpl := o.Object
		if path != nil {
			m, found, err := unstructured.NestedMap(o.Object, path...)
			if err != nil {
				return nil, fmt.Errorf("openstack-helm chart %s: the pod template of %s %s: %w", chart, o.GetKind(), o.GetName(), err)
			}
			if !found {
				return nil, fmt.Errorf("openstack-helm chart %s: %s %s has no pod template", chart, o.GetKind(), o.GetName())
			}
			tmpl = m
		}
		pod := &corev1.Pod{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, pod); err != nil {
			return nil, fmt.Errorf("openstack-helm chart %s: the pod template of %s %s: %w", chart, o.GetKind(), o.GetName(), err)
		}
		pod.Namespace = Namespace
		if o.GetKind() != "Pod" {
			pod.Name = ""
			pod.GenerateName = o.GetName() + "-"
		}
		out = append(out, Workload{Chart: chart, Kind: o.GetKind(), Name: o.GetName(), Pod: pod})
	}
	return out, nil
}
