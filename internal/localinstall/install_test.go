package localinstall

import (
	"reflect"
	"testing"
)

func TestValuesWithOverrides(t *testing.T) {
	o := Options{Image: "localhost/ke:v1", APIServerHost: "127.0.0.1", APIServerPort: 6443}
	got := merge(Values(o, 9443, 8081), map[string]any{
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
}
