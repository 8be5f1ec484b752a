package inject

// Names the webhook and the dependency controller (pkg/controller) share.
const (
	// LabelManaged is set to "true" on every pod the webhook injects, so the
	// controller finds annotated pods with one label-selected watch.
	LabelManaged = AnnotationPrefix + "managed"
	// AnnotationGate set to "true" asks for gate mode: the pod is held before
	// scheduling until the dependencies that need no node are ready.
	AnnotationGate = AnnotationPrefix + keyGate
	// NamespaceLabelGate set to "true" on a namespace asks for gate mode for
	// every annotated pod created in it.
	NamespaceLabelGate = AnnotationPrefix + keyGate
	// SchedulingGate is the pod scheduling gate of gate mode; the controller
	// removes it, and only it, once the gated dependencies are ready.
	SchedulingGate = AnnotationPrefix + "dependencies"
)
