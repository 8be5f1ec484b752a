package inject

import "context"

// ImageRef is what a registry lookup needs to read an image's config the way the
// kubelet would pull it.
type ImageRef struct {
	Image            string   // as written in the container spec
	Namespace        string   // the pod's: the admission request's (for its pull secrets and ServiceAccount)
	ServiceAccount   string   // the pod's ServiceAccount; "default" when empty
	ImagePullSecrets []string // the pod's spec.imagePullSecrets names
}

// ImageConfig is the part of an image's config that decides its argv.
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
}

// ImageConfigLookup reads image configs from registries. The webhook's
// implementation lives outside this package so that it stays pure.
type ImageConfigLookup interface {
	ImageConfig(ctx context.Context, ref ImageRef) (ImageConfig, error)
}
