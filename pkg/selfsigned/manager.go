package selfsigned

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Defaults of Options.
const (
	DefaultCAValidity    = 5 * 365 * 24 * time.Hour
	DefaultCertValidity  = 365 * 24 * time.Hour
	DefaultCheckInterval = 10 * time.Minute
)

// Secret keys; tls.crt and tls.key are those of the kubernetes.io/tls type.
const (
	keyCert     = corev1.TLSCertKey
	keyKey      = corev1.TLSPrivateKeyKey
	keyCABundle = "ca.crt"
	keyCAKey    = "ca.key"
	keyCACert   = "ca-current.crt"
	keyNextCert = "ca-next.crt"
	keyNextKey  = "ca-next.key"
)

// Annotations. An operator forces a rotation of the CA and the certificate by
// giving AnnotationRotate a new value on the Secret; the writer records the value
// it handled in AnnotationRotated.
const (
	AnnotationRotate  = "entrypoint.io/rotate"
	AnnotationRotated = "entrypoint.io/rotated"
	// AnnotationGeneration counts the Secret's writes; on the webhook configuration
	// it is the generation whose bundle the caBundle holds, so that a replica that
	// read an older Secret never puts an older bundle back.
	AnnotationGeneration = "entrypoint.io/tls-generation"
	annNextAddedAt       = "entrypoint.io/ca-next-added-at"
	annSwitchedAt        = "entrypoint.io/ca-switched-at"
)

// Options configure a Manager.
type Options struct {
	Client kubernetes.Interface
	Log    logr.Logger
	// Namespace and SecretName locate the Secret holding the CA and the serving
	// certificate; every replica shares it. It must exist (the chart renders it
	// empty): the webhook may update it, not create it.
	Namespace, SecretName string
	// WebhookConfigName is the MutatingWebhookConfiguration whose caBundle is kept
	// in step.
	WebhookConfigName string
	// Hosts are the serving certificate's names: the Service's DNS names, or IP
	// addresses when the API server calls the webhook by URL.
	Hosts []string
	// Validity of the CA and of the serving certificate; each is renewed when a
	// third of its validity is left.
	CAValidity, CertValidity time.Duration
	// CheckInterval is how often the Secret and caBundle are checked. A new CA
	// is trusted for at least one interval before certificates signed by it are
	// served, and the CA before it stays trusted for at least two intervals after.
	CheckInterval time.Duration
	// StartTimeout bounds the retries of the first check; 0 means one minute.
	StartTimeout time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

// Manager keeps the webhook's serving certificate valid and trusted. It serves
// the certificate through GetCertificate and runs as a controller-runtime Runnable.
//
// Every replica runs one, and any of them may write the Secret: each write is a
// single step of the plan below, guarded by the Secret's resourceVersion, so that of
// replicas racing only one step lands and the others re-read it. The caBundle is
// derived from the Secret only and never goes back to an older generation. A new
// CA is rotated in two steps: it is added to the bundle first, and only a check
// interval after the bundle holds it does the Secret switch to a certificate
// signed by it; the previous CA stays in the bundle until the next switch.
type Manager struct {
	opts Options

	mu      sync.RWMutex
	serving *tls.Certificate
	ready   chan struct{}
	once    sync.Once
}

// New returns a Manager; Start must run for it to serve a certificate.
func New(opts Options) (*Manager, error) {
	if opts.Client == nil || opts.Namespace == "" || opts.SecretName == "" || opts.WebhookConfigName == "" || len(opts.Hosts) == 0 {
		return nil, errors.New("self-signed TLS needs a client, the namespace and name of its Secret, the webhook configuration's name and at least one host")
	}
	if opts.CAValidity <= 0 {
		opts.CAValidity = DefaultCAValidity
	}
	if opts.CertValidity <= 0 {
		opts.CertValidity = DefaultCertValidity
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Manager{opts: opts, ready: make(chan struct{})}, nil
}

// errSetup marks errors that retrying will not fix: the Secret is missing or
// may not be read or written.
type errSetup struct{ error }

func (e errSetup) Unwrap() error { return e.error }

// Start makes sure a valid certificate exists and is trusted, then checks again
// every CheckInterval until ctx ends. The first check is retried for StartTimeout
// (the webhook configuration may be created after the Deployment); a missing or
// forbidden Secret fails at once. Later failures are logged and retried.
func (m *Manager) Start(ctx context.Context) error {
	deadline := m.opts.Now().Add(m.opts.StartTimeout)
	backoff := 200 * time.Millisecond
	for {
		err := m.Check(ctx)
		if err == nil {
			break
		}
		var setup errSetup
		if errors.As(err, &setup) || m.opts.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("setting up self-signed TLS: %w", err)
		}
		m.opts.Log.Error(err, "setting up self-signed TLS; will retry", "in", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	t := time.NewTicker(m.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.Check(ctx); err != nil {
				m.opts.Log.Error(err, "checking the self-signed certificate; will retry", "secret", m.secretRef())
			}
		}
	}
}

// NeedLeaderElection is false: every replica must serve a certificate.
func (m *Manager) NeedLeaderElection() bool { return false }

// Ready returns a channel closed once a certificate is served.
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// Healthz reports whether a certificate is served (a healthz.Checker).
func (m *Manager) Healthz(_ *http.Request) error {
	select {
	case <-m.ready:
		return nil
	default:
		return errors.New("no serving certificate yet")
	}
}

// GetCertificate serves the current certificate (tls.Config.GetCertificate).
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.serving == nil {
		return nil, errors.New("no serving certificate yet")
	}
	return m.serving, nil
}

func (m *Manager) secretRef() string { return m.opts.Namespace + "/" + m.opts.SecretName }

// errStale: the webhook configuration holds a newer generation than the Secret
// this replica read; read the Secret again.
var errStale = errors.New("the caBundle is newer than the Secret read")

// Check runs one step: read the Secret, write the next step of the plan if there
// is one, bring the caBundle up to the Secret's generation, then serve the
// Secret's certificate, which the caBundle now trusts.
func (m *Manager) Check(ctx context.Context) error {
	var lastErr error
	for range 5 {
		err := m.check(ctx)
		if err == nil || (!apierrors.IsConflict(err) && !errors.Is(err, errStale)) {
			return err
		}
		lastErr = err // another replica wrote first: start again from what it wrote
	}
	return lastErr
}

func (m *Manager) check(ctx context.Context) error {
	secrets := m.opts.Client.CoreV1().Secrets(m.opts.Namespace)
	secret, err := secrets.Get(ctx, m.opts.SecretName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return errSetup{fmt.Errorf("secret %s does not exist: the webhook keeps its certificate there but may not create it. "+
			"The Helm chart renders it (empty) with tls.mode=self-signed; otherwise create it: kubectl -n %s create secret generic %s",
			m.secretRef(), m.opts.Namespace, m.opts.SecretName)}
	case apierrors.IsForbidden(err):
		return errSetup{fmt.Errorf("reading secret %s: %w; the webhook's ServiceAccount needs get and update on it", m.secretRef(), err)}
	case err != nil:
		return fmt.Errorf("reading secret %s: %w", m.secretRef(), err)
	}
	mwcs := m.opts.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := mwcs.Get(ctx, m.opts.WebhookConfigName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading MutatingWebhookConfiguration %s to keep its caBundle: %w", m.opts.WebhookConfigName, err)
	}

	st, err := m.plan(secret, generation(cfg.Annotations))
	if err != nil {
		return err
	}
	if st.step != "" {
		secret, err = secrets.Update(ctx, st.secret, metav1.UpdateOptions{})
		if apierrors.IsForbidden(err) {
			return errSetup{fmt.Errorf("updating secret %s: %w; the webhook's ServiceAccount needs get and update on it", m.secretRef(), err)}
		}
		if err != nil {
			return err // a conflict: another replica wrote first
		}
		m.opts.Log.Info("wrote the self-signed TLS Secret", "step", st.step, "secret", m.secretRef(), "generation", generation(secret.Annotations))
	}

	bundle, err := m.publish(ctx, secret)
	if err != nil {
		return err
	}
	serving, err := tls.X509KeyPair(secret.Data[keyCert], secret.Data[keyKey])
	if err != nil {
		return fmt.Errorf("secret %s holds an unusable certificate: %w", m.secretRef(), err)
	}
	if !trusts(bundle, serving.Leaf) {
		return fmt.Errorf("the caBundle of %s does not trust the certificate of secret %s; not serving it", m.opts.WebhookConfigName, m.secretRef())
	}
	m.mu.Lock()
	changed := m.serving == nil || !bytes.Equal(m.serving.Certificate[0], serving.Certificate[0])
	m.serving = &serving
	m.mu.Unlock()
	if changed {
		m.opts.Log.Info("serving a self-signed certificate", "hosts", m.opts.Hosts, "serial", serving.Leaf.SerialNumber.String(),
			"issuer", serving.Leaf.Issuer.CommonName, "notAfter", serving.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	m.once.Do(func() { close(m.ready) })
	return nil
}

// planned is the Secret to write and why; step is empty when nothing changes.
type planned struct {
	secret *corev1.Secret
	step   string
}

// plan is the next state of the Secret, given the generation the caBundle holds.
// It never drops from the bundle a CA that a replica may still serve a certificate
// of, and never makes a certificate current whose CA the caBundle may not hold yet.
func (m *Manager) plan(secret *corev1.Secret, published int64) (planned, error) {
	now := m.opts.Now()
	data := map[string][]byte{}
	for k, v := range secret.Data {
		data[k] = v
	}
	ann := map[string]string{}
	for k, v := range secret.Annotations {
		ann[k] = v
	}
	ca, _ := parseKeyPair(data[keyCACert], data[keyCAKey])
	next, _ := parseKeyPair(data[keyNextCert], data[keyNextKey])
	bundle := unexpired(parseCerts(data[keyCABundle]), now)
	var steps []string

	rotateRequested := ann[AnnotationRotate] != "" && ann[AnnotationRotate] != ann[AnnotationRotated]
	switchedAt, _ := time.Parse(time.RFC3339Nano, ann[annSwitchedAt])
	nextAddedAt, _ := time.Parse(time.RFC3339Nano, ann[annNextAddedAt])
	switch {
	case ca == nil || !now.Before(ca.cert.NotAfter):
		// First start (or an unreadable or expired CA): nothing can serve a
		// certificate the API server accepts, so one step is safe. CAs still in
		// the bundle stay trusted.
		fresh, err := newCA("entrypoint-webhook-ca", m.opts.CAValidity, now)
		if err != nil {
			return planned{}, err
		}
		ca, next = fresh, nil
		bundle = append([]*x509.Certificate{ca.cert}, without(bundle, ca.cert)...)
		delete(ann, annNextAddedAt)
		if rotateRequested {
			ann[AnnotationRotated] = ann[AnnotationRotate]
		}
		steps = append(steps, "created a CA")
	case next != nil:
		// Second step of a rotation: switch once the caBundle has held the new
		// CA for a check interval, time for every API server to load it.
		if published >= generation(ann) && !now.Before(nextAddedAt.Add(m.opts.CheckInterval)) {
			bundle = []*x509.Certificate{next.cert, ca.cert}
			ca, next = next, nil
			delete(ann, annNextAddedAt)
			ann[annSwitchedAt] = now.UTC().Format(time.RFC3339Nano)
			steps = append(steps, "switched to the new CA")
		}
	case rotateRequested || m.expiring(ca.cert, now):
		// First step: trust a new CA before anything is signed by it. Not
		// before two check intervals after the last switch, so that every replica
		// has left the CA this may drop at the next switch.
		if !switchedAt.IsZero() && now.Before(switchedAt.Add(2*m.opts.CheckInterval)) {
			break
		}
		fresh, err := newCA("entrypoint-webhook-ca", m.opts.CAValidity, now)
		if err != nil {
			return planned{}, err
		}
		next = fresh
		bundle = append(bundle, next.cert)
		ann[annNextAddedAt] = now.UTC().Format(time.RFC3339Nano)
		if rotateRequested {
			ann[AnnotationRotated] = ann[AnnotationRotate]
		}
		steps = append(steps, "added a new CA to the bundle")
	}

	serving, _ := parseKeyPair(data[keyCert], data[keyKey])
	if serving == nil || m.expiring(serving.cert, now) || !m.coversHosts(serving.cert) || !signedBy(serving.cert, ca.cert) {
		// Signed by the current CA, which the bundle holds: safe at once.
		fresh, err := ca.sign(m.opts.Hosts, m.opts.CertValidity, now)
		if err != nil {
			return planned{}, err
		}
		serving = fresh
		steps = append(steps, "issued a serving certificate")
	}
	if len(steps) == 0 {
		return planned{}, nil
	}

	data[keyCACert], data[keyCAKey] = ca.certPEM, ca.keyPEM
	data[keyCert], data[keyKey] = serving.certPEM, serving.keyPEM
	if !containsCert(bundle, ca.cert) {
		bundle = append([]*x509.Certificate{ca.cert}, bundle...)
	}
	data[keyCABundle] = encodeCerts(bundle...)
	if next != nil {
		data[keyNextCert], data[keyNextKey] = next.certPEM, next.keyPEM
	} else {
		delete(data, keyNextCert)
		delete(data, keyNextKey)
	}
	ann[AnnotationGeneration] = strconv.FormatInt(generation(secret.Annotations)+1, 10)
	out := secret.DeepCopy()
	out.Data, out.StringData, out.Annotations = data, nil, ann
	step := steps[0]
	for _, s := range steps[1:] {
		step += ", " + s
	}
	return planned{secret: out, step: step}, nil
}

// publish brings the caBundle of every webhook of the configuration to the
// Secret's bundle unless it already holds a newer generation, and returns the
// bundle the configuration holds. Updates are guarded by its resourceVersion.
func (m *Manager) publish(ctx context.Context, secret *corev1.Secret) ([]byte, error) {
	client := m.opts.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	want, gen := secret.Data[keyCABundle], generation(secret.Annotations)
	for range 5 {
		cfg, err := client.Get(ctx, m.opts.WebhookConfigName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("reading MutatingWebhookConfiguration %s to set its caBundle: %w", m.opts.WebhookConfigName, err)
		}
		have := generation(cfg.Annotations)
		if have > gen {
			return nil, errStale
		}
		if have == gen && bundlesAre(cfg, want) {
			return want, nil
		}
		cfg = cfg.DeepCopy()
		if cfg.Annotations == nil {
			cfg.Annotations = map[string]string{}
		}
		cfg.Annotations[AnnotationGeneration] = strconv.FormatInt(gen, 10)
		for i := range cfg.Webhooks {
			cfg.Webhooks[i].ClientConfig.CABundle = want
		}
		_, err = client.Update(ctx, cfg, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("updating the caBundle of MutatingWebhookConfiguration %s: %w", m.opts.WebhookConfigName, err)
		}
		m.opts.Log.Info("updated the caBundle", "mutatingWebhookConfiguration", m.opts.WebhookConfigName, "generation", gen, "cas", len(parseCerts(want)))
		return want, nil
	}
	return nil, apierrors.NewConflict(admissionregistrationv1.Resource("mutatingwebhookconfigurations"), m.opts.WebhookConfigName,
		errors.New("kept changing while the caBundle was written"))
}

func bundlesAre(cfg *admissionregistrationv1.MutatingWebhookConfiguration, bundle []byte) bool {
	for _, w := range cfg.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, bundle) {
			return false
		}
	}
	return true
}

// generation reads AnnotationGeneration; absent or malformed is 0.
func generation(ann map[string]string) int64 {
	n, err := strconv.ParseInt(ann[AnnotationGeneration], 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// trusts: the PEM bundle holds the CA that signed c.
func trusts(bundle []byte, c *x509.Certificate) bool {
	for _, ca := range parseCerts(bundle) {
		if c.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

func unexpired(certs []*x509.Certificate, now time.Time) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range certs {
		if now.Before(c.NotAfter) {
			out = append(out, c)
		}
	}
	return out
}

func containsCert(certs []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range certs {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

func without(certs []*x509.Certificate, c *x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, x := range certs {
		if !x.Equal(c) {
			out = append(out, x)
		}
	}
	return out
}

// expiring: a third of the certificate's validity or less is left.
func (m *Manager) expiring(c *x509.Certificate, now time.Time) bool {
	return c.NotAfter.Sub(now) < c.NotAfter.Sub(c.NotBefore)/3
}

func (m *Manager) coversHosts(c *x509.Certificate) bool {
	for _, h := range m.opts.Hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func signedBy(c, ca *x509.Certificate) bool {
	return c.CheckSignatureFrom(ca) == nil
}
