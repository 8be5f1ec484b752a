package webhook

import (
	"reflect"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
)

// podPatch returns the JSON patch that turns original into mutated, for the parts
// of a pod that pkg/inject changes: annotations, volumes, init containers, and
// command, args, env and volume mounts of containers. It is built from the typed
// objects instead of diffing whole JSON documents, which would decode the pod
// twice more per request; fields it does not touch are never rewritten, so fields
// this build does not know survive. Object members are set with "add", which
// RFC 6902 defines to replace a member that exists.
func podPatch(original, mutated *corev1.Pod) []jsonpatch.Operation {
	var ops []jsonpatch.Operation
	if !reflect.DeepEqual(original.Annotations, mutated.Annotations) {
		if original.Annotations == nil {
			ops = append(ops, op("add", "/metadata/annotations", mutated.Annotations))
		} else {
			for k, v := range mutated.Annotations {
				if old, ok := original.Annotations[k]; !ok || old != v {
					ops = append(ops, op("add", "/metadata/annotations/"+escape(k), v))
				}
			}
			for k := range original.Annotations {
				if _, ok := mutated.Annotations[k]; !ok {
					ops = append(ops, jsonpatch.Operation{Operation: "remove", Path: "/metadata/annotations/" + escape(k)})
				}
			}
		}
	}
	if !reflect.DeepEqual(original.Spec.Volumes, mutated.Spec.Volumes) {
		ops = append(ops, op("add", "/spec/volumes", mutated.Spec.Volumes))
	}
	if !reflect.DeepEqual(original.Spec.InitContainers, mutated.Spec.InitContainers) {
		ops = append(ops, op("add", "/spec/initContainers", mutated.Spec.InitContainers))
	}
	restSpec, restMutated := original.Spec, mutated.Spec
	restSpec.Volumes, restSpec.InitContainers, restSpec.Containers = nil, nil, nil
	restMutated.Volumes, restMutated.InitContainers, restMutated.Containers = nil, nil, nil
	if !reflect.DeepEqual(restSpec, restMutated) {
		// Not something pkg/inject does today; stay correct if it ever does.
		return append(ops, op("add", "/spec", mutated.Spec))
	}
	if len(original.Spec.Containers) != len(mutated.Spec.Containers) {
		return append(ops, op("replace", "/spec/containers", mutated.Spec.Containers))
	}
	for i := range mutated.Spec.Containers {
		ops = append(ops, containerPatch("/spec/containers/"+strconv.Itoa(i), &original.Spec.Containers[i], &mutated.Spec.Containers[i])...)
	}
	return ops
}

func containerPatch(path string, original, mutated *corev1.Container) []jsonpatch.Operation {
	if reflect.DeepEqual(original, mutated) {
		return nil
	}
	var ops []jsonpatch.Operation
	field := func(name string, was, is any) {
		if !reflect.DeepEqual(was, is) {
			ops = append(ops, op("add", path+"/"+name, is))
		}
	}
	field("command", original.Command, mutated.Command)
	field("args", original.Args, mutated.Args)
	field("env", original.Env, mutated.Env)
	field("volumeMounts", original.VolumeMounts, mutated.VolumeMounts)
	// Anything else changed as well: replace the container whole.
	rest, restMutated := *original, *mutated
	rest.Command, rest.Args, rest.Env, rest.VolumeMounts = nil, nil, nil, nil
	restMutated.Command, restMutated.Args, restMutated.Env, restMutated.VolumeMounts = nil, nil, nil, nil
	if !reflect.DeepEqual(rest, restMutated) {
		return []jsonpatch.Operation{op("replace", path, mutated)}
	}
	return ops
}

func op(operation, path string, value any) jsonpatch.Operation {
	return jsonpatch.Operation{Operation: operation, Path: path, Value: value}
}

// escape encodes a map key as a JSON pointer segment (RFC 6901).
func escape(key string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}
