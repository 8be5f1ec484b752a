package inject

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestConfigIsUsed(t *testing.T) {
	resources := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("8Mi")},
	}
	cfg := Config{
		Image:           "registry.example/ke@sha256:0123",
		ImagePullPolicy: corev1.PullAlways,
		MountPath:       "/opt/ke",
		Resources:       resources,
		RunAsUser:       1000,
	}
	out, _, err := Mutate(context.Background(), simplePod(map[string]string{"entrypoint.io/dependency-service": "db"}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	init := out.Spec.InitContainers[0]
	if init.Image != cfg.Image || init.ImagePullPolicy != corev1.PullAlways ||
		!reflect.DeepEqual(init.Command, []string{"kubernetes-entrypoint", "install", "/opt/ke"}) ||
		init.VolumeMounts[0].MountPath != "/opt/ke" || *init.SecurityContext.RunAsUser != 1000 ||
		!reflect.DeepEqual(init.Resources, resources) {
		t.Errorf("init container does not follow the config: %+v", init)
	}
	app := out.Spec.Containers[0]
	if !reflect.DeepEqual(app.Command, []string{"/opt/ke/kubernetes-entrypoint"}) || app.VolumeMounts[0].MountPath != "/opt/ke" {
		t.Errorf("app container does not follow the config: %+v", app)
	}
}

// Default fills exactly the unset fields; RunAsUser 0 is unset, never root.
func TestConfigDefault(t *testing.T) {
	custom := corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{
			name: "all unset",
			in:   Config{Image: "x"},
			want: Config{Image: "x", ImagePullPolicy: corev1.PullIfNotPresent, MountPath: DefaultMountPath, InjectionMode: ModeInitContainer,
				Resources: DefaultResources(), RunAsUser: DefaultRunAsUser, LookupBudget: DefaultLookupBudget},
		},
		{
			name: "all set",
			in: Config{Image: "x", ImagePullPolicy: corev1.PullNever, MountPath: "/opt/ke", Resources: custom,
				RunAsUser: 1000, LookupBudget: time.Second, InjectionMode: ModeImageVolume},
			want: Config{Image: "x", ImagePullPolicy: corev1.PullNever, MountPath: "/opt/ke", Resources: custom,
				RunAsUser: 1000, LookupBudget: time.Second, InjectionMode: ModeImageVolume},
		},
		{
			name: "a negative UID is kept, for Validate to refuse",
			in:   Config{Image: "x", RunAsUser: -1},
			want: Config{Image: "x", ImagePullPolicy: corev1.PullIfNotPresent, MountPath: DefaultMountPath, InjectionMode: ModeInitContainer,
				Resources: DefaultResources(), RunAsUser: -1, LookupBudget: DefaultLookupBudget},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.Default()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Default() = %+v, want %+v", got, tt.want)
			}
			if !reflect.DeepEqual(got.Default(), got) {
				t.Errorf("Default is not idempotent: %+v", got.Default())
			}
		})
	}
}

// Validate names the field of each problem, and checks the config as given: a
// zero RunAsUser that reaches it is root, and refused.
func TestConfigValidate(t *testing.T) {
	valid := Config{Image: "x"}.Default()
	with := func(change func(*Config)) Config {
		c := valid
		change(&c)
		return c
	}
	quantity := func(s string) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(s)}
	}
	tests := []struct {
		name string
		cfg  Config
		want []string // "type field", in order
	}{
		{name: "defaults", cfg: valid},
		{name: "image empty", cfg: with(func(c *Config) { c.Image = " " }), want: []string{"Required value image"}},
		{name: "pull policy", cfg: with(func(c *Config) { c.ImagePullPolicy = "Sometimes" }), want: []string{"Unsupported value imagePullPolicy"}},
		{name: "pull policy unset", cfg: with(func(c *Config) { c.ImagePullPolicy = "" }), want: []string{"Unsupported value imagePullPolicy"}},
		{name: "mount path relative", cfg: with(func(c *Config) { c.MountPath = "relative/" }), want: []string{"Invalid value mountPath"}},
		{name: "mount path unclean", cfg: with(func(c *Config) { c.MountPath = "/a/../b" }), want: []string{"Invalid value mountPath"}},
		{name: "mount path root", cfg: with(func(c *Config) { c.MountPath = "/" }), want: []string{"Invalid value mountPath"}},
		{name: "image-volume mode", cfg: with(func(c *Config) { c.InjectionMode = ModeImageVolume })},
		{name: "injection mode unknown", cfg: with(func(c *Config) { c.InjectionMode = "auto" }), want: []string{"Unsupported value injectionMode"}},
		{name: "injection mode unset", cfg: with(func(c *Config) { c.InjectionMode = "" }), want: []string{"Unsupported value injectionMode"}},
		{name: "run as root", cfg: with(func(c *Config) { c.RunAsUser = 0 }), want: []string{"Invalid value runAsUser"}},
		{name: "run as negative UID", cfg: with(func(c *Config) { c.RunAsUser = -1 }), want: []string{"Invalid value runAsUser"}},
		{name: "run as another user", cfg: with(func(c *Config) { c.RunAsUser = 1 })},
		{name: "lookup budget zero", cfg: with(func(c *Config) { c.LookupBudget = 0 }), want: []string{"Invalid value lookupBudget"}},
		{name: "lookup budget negative", cfg: with(func(c *Config) { c.LookupBudget = -time.Second }), want: []string{"Invalid value lookupBudget"}},
		{
			name: "request above limit",
			cfg: with(func(c *Config) {
				c.Resources = corev1.ResourceRequirements{Requests: quantity("2"), Limits: quantity("1")}
			}),
			want: []string{"Invalid value resources.requests[cpu]"},
		},
		{
			name: "negative quantities",
			cfg: with(func(c *Config) {
				c.Resources = corev1.ResourceRequirements{Requests: quantity("-1"), Limits: quantity("-2")}
			}),
			want: []string{"Invalid value resources.requests[cpu]", "Invalid value resources.requests[cpu]", "Invalid value resources.limits[cpu]"},
		},
		{name: "limits only", cfg: with(func(c *Config) { c.Resources = corev1.ResourceRequirements{Limits: quantity("1")} })},
		{
			name: "everything wrong",
			cfg:  Config{ImagePullPolicy: "Sometimes", MountPath: "relative/", RunAsUser: -1},
			want: []string{"Required value image", "Unsupported value imagePullPolicy", "Invalid value mountPath",
				"Unsupported value injectionMode", "Invalid value runAsUser", "Invalid value lookupBudget"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range tt.cfg.Validate() {
				got = append(got, e.Type.String()+" "+e.Field)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

// Mutate applies the defaults, so RunAsUser 0 there is the default user, and
// denies every pod when the config is invalid: the deployment's fault, not the pod's.
func TestMutateConfig(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		wantUser int64
		wantErr  string
	}{
		{name: "unset user", cfg: Config{Image: "x"}, wantUser: DefaultRunAsUser},
		{name: "set user", cfg: Config{Image: "x", RunAsUser: 1000}, wantUser: 1000},
		{name: "negative user", cfg: Config{Image: "x", RunAsUser: -1}, wantErr: "runAsUser"},
		{name: "no image", cfg: Config{}, wantErr: "image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, outcome, err := Mutate(context.Background(), simplePod(map[string]string{"entrypoint.io/dependency-service": "db"}), tt.cfg)
			if tt.wantErr != "" {
				if out != nil || err == nil || !strings.Contains(err.Error(), tt.wantErr) ||
					outcome.Result != ResultDenied || outcome.Reason != ReasonInvalidConfig {
					t.Errorf("Mutate: %v, %+v, %v; want a denial for the config naming %s", out, outcome, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := *out.Spec.InitContainers[0].SecurityContext.RunAsUser; got != tt.wantUser {
				t.Errorf("init container runs as %d, want %d", got, tt.wantUser)
			}
		})
	}
}

// The registry is asked the way the kubelet would pull: the pod's namespace,
// ServiceAccount and pull secrets; once per image.
func TestImageLookupRef(t *testing.T) {
	registry := &fakeRegistry{}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Namespace: "shop", Annotations: map[string]string{"entrypoint.io/dependency-service": "db"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "mirror"}},
			Containers: []corev1.Container{
				{Name: "api", Image: "registry.example/app:1.0"},
				{Name: "worker", Image: "registry.example/app:1.0", Args: []string{"work"}},
			},
		},
	}
	if _, _, err := Mutate(context.Background(), pod, Config{Image: testImage, ImageConfig: registry}); err != nil {
		t.Fatal(err)
	}
	want := []ImageRef{{Image: "registry.example/app:1.0", Namespace: "shop", ServiceAccount: "web", ImagePullSecrets: []string{"regcred", "mirror"}}}
	if got := registry.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("registry asked %+v, want %+v", got, want)
	}

	registry = &fakeRegistry{}
	pod.Spec.ServiceAccountName, pod.Spec.ImagePullSecrets = "", nil
	if _, _, err := Mutate(context.Background(), pod, Config{Image: testImage, ImageConfig: registry}); err != nil {
		t.Fatal(err)
	}
	if got := registry.requests(); len(got) != 1 || got[0].ServiceAccount != "default" || len(got[0].ImagePullSecrets) != 0 {
		t.Errorf("registry asked %+v, want ServiceAccount default and no pull secrets", got)
	}
}

// Containers with a command never cause a registry lookup.
func TestNoLookupWhenCommandIsKnown(t *testing.T) {
	registry := &fakeRegistry{}
	pod := simplePod(map[string]string{"entrypoint.io/dependency-service": "db"})
	if _, _, err := Mutate(context.Background(), pod, Config{Image: testImage, ImageConfig: registry}); err != nil {
		t.Fatal(err)
	}
	if got := registry.requests(); len(got) != 0 {
		t.Errorf("registry asked %+v, want no lookups", got)
	}
}
