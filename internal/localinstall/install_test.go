package localinstall

import (
	"reflect"
	"testing"
)

func TestValuesWithOverrides(t *testing.T) {
	o := Options{Image: "localhost/ke:v1", ResolverImage: "localhost/ke-resolver:v1", APIServerHost: "127.0.0.1", APIServerPort: 6443}
	got := merge(Values(o, 9443, 8081, 8083), map[string]any{
		"injection":    map[string]any{"resources": map[string]any{"requests": map[string]any{"cpu": "1m"}}},
		"replicaCount": 2,
	})
	injection := got["injection"].(map[string]any)
	if injection["imagePullPolicy"] != "Never" || injection["mode"] != "init-container" {
		t.Errorf("an override of injection.resources lost injection.imagePullPolicy or injection.mode: %v", injection)
	}
	if want := map[string]any{"requests": map[string]any{"cpu": "1m"}}; !reflect.DeepEqual(injection["resources"], want) {
		t.Errorf("injection.resources = %v, want %v", injection["resources"], want)
	}
	if got["replicaCount"] != 2 {
		t.Errorf("replicaCount = %v, want 2", got["replicaCount"])
	}
	webhook := got["webhook"].(map[string]any)
	if webhook["url"] != "https://127.0.0.1:9443/mutate-v1-pod" || webhook["port"] != 9443 || webhook["hostNetwork"] != true {
		t.Errorf("webhook values %v: want the URL and port 9443 on the host network", webhook)
	}
	if img := got["image"].(map[string]any); img["repository"] != "localhost/ke" || img["tag"] != "v1" {
		t.Errorf("image values %v", img)
	}
	if img := injection["image"].(map[string]any); img["repository"] != "localhost/ke-resolver" || img["tag"] != "v1" {
		t.Errorf("injection.image values %v: want the resolver's image", img)
	}
}

// The controller runs on the webhook's network with the webhook's way to the API
// server: on the host network by default, on the pod network when a suite moves the
// webhook there, unless the overrides place the controller themselves.
func TestControllerFollowsTheWebhook(t *testing.T) {
	o := Options{Image: "localhost/ke:v1", ResolverImage: "localhost/ke-resolver:v1", APIServerHost: "127.0.0.1", APIServerPort: 6443}
	controller := func(overrides map[string]any) map[string]any {
		return alignController(merge(Values(o, 9443, 8081, 8083), overrides), overrides)["controller"].(map[string]any)
	}
	c := controller(nil)
	if c["hostNetwork"] != true || c["healthProbePort"] != 8083 || len(c["extraEnv"].([]any)) != 2 {
		t.Errorf("by default the controller %v: want the host network, its own health port and the API server's address", c)
	}
	bridge := map[string]any{"webhook": map[string]any{"hostNetwork": false, "extraEnv": []any{
		map[string]any{"name": "KUBERNETES_SERVICE_HOST", "value": "10.88.0.1"},
	}}}
	c = controller(bridge)
	if c["hostNetwork"] != false || !reflect.DeepEqual(c["extraEnv"], bridge["webhook"].(map[string]any)["extraEnv"]) {
		t.Errorf("the webhook on the pod network, the controller %v: want it there too, with the webhook's env", c)
	}
	bridge["controller"] = map[string]any{"hostNetwork": true}
	if c = controller(bridge); c["hostNetwork"] != true {
		t.Errorf("controller.hostNetwork overridden, the controller %v: want the override", c)
	}
	for values, want := range map[string]bool{
		"{}": true, "separate=false": false, "enabled=false": false,
	} {
		v := map[string]any{"controller": map[string]any{}}
		switch values {
		case "separate=false":
			v["controller"].(map[string]any)["separate"] = false
		case "enabled=false":
			v["controller"].(map[string]any)["enabled"] = false
		}
		if got := separateController(v); got != want {
			t.Errorf("separateController(controller %s) = %v, want %v", values, got, want)
		}
	}
}
