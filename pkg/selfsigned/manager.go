package selfsigned

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// Defaults of Options.
const (
	DefaultCAValidity    = 5 * 365 * 24 * time.Hour
	DefaultCertValidity  = 365 * 24 * time.Hour
	DefaultCheckInterval = 10 * time.Minute
)

// Secret keys; tls.crt and tls.key follow the kubernetes.io/tls Secret type.
const (
	keyCert     = corev1.TLSCertKey
	keyKey      = corev1.TLSPrivateKeyKey
	keyCABundle = "ca.crt"
	keyCAKey    = "ca.key"
	keyCACert   = "ca-current.crt"
)

// Options configure a Manager.
type Options struct {
	Client kubernetes.Interface
	Log    logr.Logger
	// Namespace and SecretName locate the Secret holding the CA and the serving
	// certificate; every replica shares it.
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
	// CheckInterval is how often the Secret and caBundle are checked.
	CheckInterval time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

// Manager keeps the webhook's serving certificate valid and trusted. It serves
// the certificate through GetCertificate and runs as a controller-runtime Runnable.
type Manager struct {
	opts Options

	mu      sync.RWMutex
	serving *tls.Certificate
	caPEM   []byte
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Manager{opts: opts, ready: make(chan struct{})}, nil
}

// Start makes sure a valid certificate exists and is trusted, then checks again
// every CheckInterval until ctx ends. Failures are retried; they are fatal only
// before the first certificate, when the webhook could not serve at all.
func (m *Manager) Start(ctx context.Context) error {
	if err := m.reconcile(ctx, false); err != nil {
		return fmt.Errorf("setting up self-signed TLS: %w", err)
	}
	t := time.NewTicker(m.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.reconcile(ctx, false); err != nil {
				m.opts.Log.Error(err, "checking the self-signed certificate; will retry", "secret", m.opts.Namespace+"/"+m.opts.SecretName)
			}
		}
	}
}

// NeedLeaderElection is false: every replica must serve a certificate.
func (m *Manager) NeedLeaderElection() bool { return false }

// Rotate replaces the CA and the serving certificate now, keeping the previous CA
// trusted so that replicas still serving the old certificate keep working.
func (m *Manager) Rotate(ctx context.Context) error { return m.reconcile(ctx, true) }

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

// CABundle is the PEM bundle the API server must trust.
func (m *Manager) CABundle() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.caPEM)
}

func (m *Manager) reconcile(ctx context.Context, force bool) error {
	var secret *corev1.Secret
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		secret, err = m.ensureSecret(ctx, force)
		return err
	})
	if err != nil {
		return err
	}
	serving, err := tls.X509KeyPair(secret.Data[keyCert], secret.Data[keyKey])
	if err != nil {
		return fmt.Errorf("secret %s/%s holds an unusable certificate: %w", m.opts.Namespace, m.opts.SecretName, err)
	}
	bundle := secret.Data[keyCABundle]
	if err := m.patchCABundle(ctx, bundle); err != nil {
		return err
	}
	m.mu.Lock()
	changed := m.serving == nil || !bytes.Equal(m.serving.Certificate[0], serving.Certificate[0])
	m.serving, m.caPEM = &serving, bundle
	m.mu.Unlock()
	if changed {
		m.opts.Log.Info("serving a self-signed certificate", "hosts", m.opts.Hosts, "notAfter", serving.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	m.once.Do(func() { close(m.ready) })
	return nil
}

// ensureSecret returns the Secret with a valid CA and serving certificate, creating
// or renewing them as needed. A conflict with another replica is returned for retry.
func (m *Manager) ensureSecret(ctx context.Context, force bool) (*corev1.Secret, error) {
	secrets := m.opts.Client.CoreV1().Secrets(m.opts.Namespace)
	secret, err := secrets.Get(ctx, m.opts.SecretName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		data, err := m.issue(nil, nil)
		if err != nil {
			return nil, err
		}
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: m.opts.SecretName, Namespace: m.opts.Namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "entrypoint-webhook"}},
			Type: corev1.SecretTypeTLS,
			Data: data,
		}
		created, err := secrets.Create(ctx, secret, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil, apierrors.NewConflict(corev1.Resource("secrets"), m.opts.SecretName, err) // another replica won: read theirs
		}
		if err != nil {
			return nil, fmt.Errorf("creating secret %s/%s: %w", m.opts.Namespace, m.opts.SecretName, err)
		}
		m.opts.Log.Info("created a CA and serving certificate", "secret", m.opts.Namespace+"/"+m.opts.SecretName)
		return created, nil
	case err != nil:
		return nil, fmt.Errorf("reading secret %s/%s: %w", m.opts.Namespace, m.opts.SecretName, err)
	}

	now := m.opts.Now()
	ca, caErr := parseKeyPair(secret.Data[keyCACert], secret.Data[keyCAKey])
	serving, certErr := parseKeyPair(secret.Data[keyCert], secret.Data[keyKey])
	renewCA := force || caErr != nil || m.expiring(ca.certOrNil(), now)
	renewCert := renewCA || certErr != nil || m.expiring(serving.certOrNil(), now) ||
		!m.coversHosts(serving.certOrNil()) || !signedBy(serving.certOrNil(), ca.certOrNil())
	if !renewCert {
		return secret, nil
	}
	var reuse *keyPair         // the CA, unless it is being replaced
	var keep *x509.Certificate // the previous CA stays trusted while replicas switch over
	if !renewCA {
		reuse = ca
	} else if ca != nil && now.Before(ca.cert.NotAfter) {
		keep = ca.cert
	}
	data, err := m.issue(reuse, keep)
	if err != nil {
		return nil, err
	}
	if !renewCA {
		data[keyCABundle] = secret.Data[keyCABundle]
	} else if err := m.patchCABundle(ctx, data[keyCABundle]); err != nil {
		// Trust the new CA before anyone serves a certificate signed by it.
		return nil, err
	}
	secret = secret.DeepCopy()
	secret.Data = data
	updated, err := secrets.Update(ctx, secret, metav1.UpdateOptions{})
	if err != nil {
		return nil, err // a conflict is retried by the caller
	}
	m.opts.Log.Info("renewed the self-signed certificate", "newCA", renewCA, "forced", force)
	return updated, nil
}

// issue creates the Secret's data: a new CA unless ca is given, a serving
// certificate signed by it, and the bundle of the CA plus keep.
func (m *Manager) issue(ca *keyPair, keep *x509.Certificate) (map[string][]byte, error) {
	now := m.opts.Now()
	var err error
	if ca == nil {
		ca, err = newCA("entrypoint-webhook-ca", m.opts.CAValidity, now)
		if err != nil {
			return nil, err
		}
	}
	serving, err := ca.sign(m.opts.Hosts, m.opts.CertValidity, now)
	if err != nil {
		return nil, err
	}
	bundle := encodeCerts(ca.cert)
	if keep != nil {
		bundle = append(bundle, encodeCerts(keep)...)
	}
	return map[string][]byte{
		keyCert: serving.certPEM, keyKey: serving.keyPEM,
		keyCACert: ca.certPEM, keyCAKey: ca.keyPEM, keyCABundle: bundle,
	}, nil
}

func (k *keyPair) certOrNil() *x509.Certificate {
	if k == nil {
		return nil
	}
	return k.cert
}

// expiring: a third of the certificate's validity or less is left.
func (m *Manager) expiring(c *x509.Certificate, now time.Time) bool {
	if c == nil {
		return true
	}
	return c.NotAfter.Sub(now) < c.NotAfter.Sub(c.NotBefore)/3
}

func (m *Manager) coversHosts(c *x509.Certificate) bool {
	if c == nil {
		return false
	}
	for _, h := range m.opts.Hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func signedBy(c, ca *x509.Certificate) bool {
	return c != nil && ca != nil && c.CheckSignatureFrom(ca) == nil
}

// patchCABundle sets caBundle on every webhook of the configuration.
func (m *Manager) patchCABundle(ctx context.Context, bundle []byte) error {
	client := m.opts.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cfg, err := client.Get(ctx, m.opts.WebhookConfigName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading MutatingWebhookConfiguration %s to set its caBundle: %w", m.opts.WebhookConfigName, err)
		}
		changed := false
		for i := range cfg.Webhooks {
			if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, bundle) {
				cfg.Webhooks[i].ClientConfig.CABundle = bundle
				changed = true
			}
		}
		if !changed {
			return nil
		}
		if _, err := client.Update(ctx, cfg, metav1.UpdateOptions{}); err != nil {
			return err
		}
		m.opts.Log.Info("updated the caBundle", "mutatingWebhookConfiguration", m.opts.WebhookConfigName)
		return nil
	})
}
