package webhook

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
)

// podPatch returns the JSON patch that turns original into mutated, for the parts
// of a pod that pkg/inject changes: annotations and labels set, volumes, init
// containers and scheduling gates added, the command, args, env and volume
// mounts of wrapped containers, and the env values of an adopted one. It is built
// from the typed objects instead of diffing whole JSON documents, which would
// decode the pod twice more per request.
//
// It adds and replaces only what changed, by index: new volumes, init containers,
// env entries and volume mounts are added at their place, and no array the user
// wrote is replaced whole, so that fields this build's k8s.io/api does not know (an
// API server newer than the webhook) survive in everything the user wrote. Only
// command and args, arrays of strings, are replaced. Object members are set with
// "add", which RFC 6902 defines to replace a member that exists.
//
// Any other change is an error: it could not be expressed without losing fields.
func podPatch(original, mutated *corev1.Pod) ([]jsonpatch.Operation, error) {
	restOriginal, restMutated := *original, *mutated
	restOriginal.Annotations, restMutated.Annotations = nil, nil
	restOriginal.Labels, restMutated.Labels = nil, nil
	restOriginal.Spec.Volumes, restMutated.Spec.Volumes = nil, nil
	restOriginal.Spec.SchedulingGates, restMutated.Spec.SchedulingGates = nil, nil
	restOriginal.Spec.InitContainers, restMutated.Spec.InitContainers = nil, nil
	restOriginal.Spec.Containers, restMutated.Spec.Containers = nil, nil
	if !reflect.DeepEqual(restOriginal, restMutated) {
		return nil, fmt.Errorf("building the pod's patch: the mutation changed more than annotations, labels, volumes, scheduling gates and containers")
	}

	ops := mapPatch("/metadata/annotations", original.Annotations, mutated.Annotations)
	ops = append(ops, mapPatch("/metadata/labels", original.Labels, mutated.Labels)...)
	for _, list := range []struct {
		path string
		ops  func() ([]jsonpatch.Operation, error)
	}{
		{"/spec/volumes", func() ([]jsonpatch.Operation, error) {
			return appended("/spec/volumes", original.Spec.Volumes, mutated.Spec.Volumes)
		}},
		{"/spec/schedulingGates", func() ([]jsonpatch.Operation, error) {
			return appended("/spec/schedulingGates", original.Spec.SchedulingGates, mutated.Spec.SchedulingGates)
		}},
	} {
		added, err := list.ops()
		if err != nil {
			return nil, err
		}
		ops = append(ops, added...)
	}
	for _, list := range []struct {
		path              string
		original, mutated []corev1.Container
	}{
		{"/spec/initContainers", original.Spec.InitContainers, mutated.Spec.InitContainers},
		{"/spec/containers", original.Spec.Containers, mutated.Spec.Containers},
	} {
		containers, err := containersPatch(list.path, list.original, list.mutated)
		if err != nil {
			return nil, err
		}
		ops = append(ops, containers...)
	}
	return ops, nil
}

// mapPatch patches the map of strings at path (annotations, labels) from
// original to mutated: the whole map added when the pod has none, else each key
// set or removed, escaped as a JSON pointer segment ("entrypoint.io~1status").
func mapPatch(path string, original, mutated map[string]string) []jsonpatch.Operation {
	if original == nil {
		if mutated == nil {
			return nil
		}
		return []jsonpatch.Operation{op("add", path, mutated)}
	}
	var ops []jsonpatch.Operation
	for k, v := range mutated {
		if old, ok := original[k]; !ok || old != v {
			ops = append(ops, op("add", path+"/"+escape(k), v))
		}
	}
	for k := range original {
		if _, ok := mutated[k]; !ok {
			ops = append(ops, jsonpatch.Operation{Operation: "remove", Path: path + "/" + escape(k)})
		}
	}
	return ops
}

// containersPatch patches the containers at path, original into mutated, which
// holds every original container, in order, changed or not, and new ones between
// them. New containers are told apart by name: a container the mutation added has
// a name no original one at that place has. The operations go in the order of
// mutated, so that each index is the container's final one when applied.
func containersPatch(path string, original, mutated []corev1.Container) ([]jsonpatch.Operation, error) {
	if len(original) == 0 {
		if len(mutated) == 0 {
			return nil, nil
		}
		return []jsonpatch.Operation{op("add", path, mutated)}, nil
	}
	var ops []jsonpatch.Operation
	j := 0 // next original container
	for i := range mutated {
		at := path + "/" + strconv.Itoa(i)
		if j < len(original) && mutated[i].Name == original[j].Name {
			changed, err := containerPatch(at, &original[j], &mutated[i])
			if err != nil {
				return nil, err
			}
			ops = append(ops, changed...)
			j++
			continue
		}
		ops = append(ops, op("add", at, mutated[i]))
	}
	if j != len(original) {
		return nil, fmt.Errorf("building the pod's patch: the mutation removed or reordered containers at %s", path)
	}
	return ops, nil
}

// containerPatch patches one container: command and args replaced, env and
// volume mounts appended to, the values of env entries replaced.
func containerPatch(path string, original, mutated *corev1.Container) ([]jsonpatch.Operation, error) {
	if reflect.DeepEqual(original, mutated) {
		return nil, nil
	}
	rest, restMutated := *original, *mutated
	rest.Command, rest.Args, rest.Env, rest.VolumeMounts = nil, nil, nil, nil
	restMutated.Command, restMutated.Args, restMutated.Env, restMutated.VolumeMounts = nil, nil, nil, nil
	if !reflect.DeepEqual(rest, restMutated) {
		return nil, fmt.Errorf("building the pod's patch: the mutation changed more than command, args, env and volumeMounts of the container at %s", path)
	}
	var ops []jsonpatch.Operation
	if !reflect.DeepEqual(original.Command, mutated.Command) {
		ops = append(ops, op("add", path+"/command", mutated.Command))
	}
	if !reflect.DeepEqual(original.Args, mutated.Args) {
		ops = append(ops, op("add", path+"/args", mutated.Args))
	}
	env, err := envPatch(path+"/env", original.Env, mutated.Env)
	if err != nil {
		return nil, err
	}
	mounts, err := appended(path+"/volumeMounts", original.VolumeMounts, mutated.VolumeMounts)
	if err != nil {
		return nil, err
	}
	return append(append(ops, env...), mounts...), nil
}

// envPatch patches the env at path from original to mutated: the value of an
// entry set by value replaced (adoption empties the variables it moves to the
// gate), by index, so that the entry's other fields stay as written, then the
// entries added at the end.
func envPatch(path string, original, mutated []corev1.EnvVar) ([]jsonpatch.Operation, error) {
	if len(mutated) < len(original) {
		return nil, fmt.Errorf("building the pod's patch: the mutation removed items of %s", path)
	}
	var ops []jsonpatch.Operation
	for i := range original {
		was, now := original[i], mutated[i]
		if reflect.DeepEqual(was, now) {
			continue
		}
		if was.Name != now.Name || was.ValueFrom != nil || now.ValueFrom != nil {
			return nil, fmt.Errorf("building the pod's patch: the mutation changed more than the value of %s/%d", path, i)
		}
		ops = append(ops, op("add", path+"/"+strconv.Itoa(i)+"/value", now.Value))
	}
	// What is left to compare is the entries added at the end.
	kept := append(append(make([]corev1.EnvVar, 0, len(mutated)), original...), mutated[len(original):]...)
	added, err := appended(path, original, kept)
	if err != nil {
		return nil, err
	}
	return append(ops, added...), nil
}

// appended patches the array at path from original to mutated, which must be
// original with items added at its end: each is added after the last, or the
// array is created when original is empty (absent, null or []).
func appended[T any](path string, original, mutated []T) ([]jsonpatch.Operation, error) {
	changed := len(mutated) < len(original)
	for i := 0; !changed && i < len(original); i++ {
		changed = !reflect.DeepEqual(original[i], mutated[i])
	}
	if changed {
		return nil, fmt.Errorf("building the pod's patch: the mutation changed items of %s, where it may only add some at the end", path)
	}
	added := mutated[len(original):]
	switch {
	case len(added) == 0:
		return nil, nil
	case len(original) == 0:
		return []jsonpatch.Operation{op("add", path, added)}, nil
	}
	ops := make([]jsonpatch.Operation, len(added))
	for i := range added {
		ops[i] = op("add", path+"/-", added[i])
	}
	return ops, nil
}

func op(operation, path string, value any) jsonpatch.Operation { //nolint:unparam // a patch operation names its kind, as RFC 6902 writes it
	return jsonpatch.Operation{Operation: operation, Path: path, Value: value}
}

// escape encodes a map key as a JSON pointer segment (RFC 6901).
func escape(key string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}
