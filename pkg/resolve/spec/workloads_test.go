package spec

import (
	"strings"
	"testing"
)

// Each malformed item of the new list kinds is reported with what is wrong and
// the form expected.
func TestParseWorkloadKindsRejects(t *testing.T) {
	tests := []struct {
		name, env, value string
		want             []string
	}{
		{"rollout without kind", EnvRollouts, "api", []string{`"api" has no kind: write deployment/api`, rolloutForm}},
		{"rollout of another kind", EnvRollouts, "replicaset/api", []string{`has kind "replicaset", which is not deployment, statefulset or daemonset`}},
		{"rollout without name", EnvRollouts, "ns:deployment/", []string{"has an empty name after '/'"}},
		{"rollout bad namespace", EnvRollouts, "NS:deployment/api", []string{"has namespace \"NS\", which is not a DNS-1123 label"}},
		{"rollout bad name", EnvRollouts, "deployment/API", []string{`has name "API", which is not a DNS-1123 subdomain`}},
		{"rollout empty item", EnvRollouts, "deployment/a,,daemonset/b", []string{"item 2 of", "is empty"}},
		{"pvc bad name", EnvClaims, "Data", []string{`has name "Data"`}},
		{"configmap empty key", EnvConfigMaps, "settings/", []string{"has an empty key after '/'", keyRefForm}},
		{"configmap bad key", EnvConfigMaps, "settings/a b", []string{`has key "a b", which is not a ConfigMap or Secret key`}},
		{"configmap no name", EnvConfigMaps, "other:/key", []string{"has an empty name"}},
		{"secret two colons", EnvSecrets, "a:b:c", []string{"has more than one ':'"}},
		{"crd without group", EnvCRDs, "certificates", []string{"has no group"}},
		{"crd bad name", EnvCRDs, "Certificates.x.io", []string{"is not a DNS-1123 subdomain", crdForm}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromEnv(lookupIn(map[string]string{tt.env: tt.value}))
			if err == nil {
				t.Fatalf("%s=%q parsed", tt.env, tt.value)
			}
			for _, w := range append(tt.want, tt.env+": ") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
