package selfsigned

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// fixture is a Manager on a fake clientset holding an empty Secret and a webhook
// configuration with two webhooks, with a clock the test moves. The real API
// server, and two processes racing, are tested in pkg/webhook/server.
type fixture struct {
	t      *testing.T
	client *fake.Clientset
	m      *Manager
	now    time.Time
}

const interval = time.Hour

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.client = fake.NewClientset(
		&admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "hook"},
			Webhooks:   []admissionregistrationv1.MutatingWebhook{{Name: "a.entrypoint.io"}, {Name: "b.entrypoint.io"}},
		},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "ns"}, Type: corev1.SecretTypeOpaque},
	)
	m, err := New(Options{
		Client: f.client, Log: logr.Discard(), Namespace: "ns", SecretName: "tls", WebhookConfigName: "hook",
		Hosts: []string{"svc.ns.svc", "127.0.0.1"}, CAValidity: 300 * 24 * time.Hour, CertValidity: 90 * 24 * time.Hour,
		CheckInterval: interval, Now: func() time.Time { return f.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	return f
}

// state is what one check leaves: the served certificate, the Secret's current
// CA and bundle, and the caBundle, which must trust the served certificate.
type state struct {
	serving, ca *x509.Certificate
	bundle      []*x509.Certificate
	secret      *corev1.Secret
}

func (f *fixture) check() state {
	f.t.Helper()
	ctx := context.Background()
	if err := f.m.Check(ctx); err != nil {
		f.t.Fatal(err)
	}
	s, err := f.client.CoreV1().Secrets("ns").Get(ctx, "tls", metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	cfg, err := f.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "hook", metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	served, err := f.m.GetCertificate(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, w := range cfg.Webhooks {
		if string(w.ClientConfig.CABundle) != string(s.Data[keyCABundle]) {
			f.t.Fatalf("webhook %s has caBundle %q, want the Secret's", w.Name, w.ClientConfig.CABundle)
		}
		if !trusts(w.ClientConfig.CABundle, served.Leaf) {
			f.t.Fatalf("webhook %s's caBundle does not trust the served certificate", w.Name)
		}
	}
	if cfg.Annotations[AnnotationGeneration] != s.Annotations[AnnotationGeneration] {
		f.t.Fatalf("caBundle generation %q, Secret generation %q", cfg.Annotations[AnnotationGeneration], s.Annotations[AnnotationGeneration])
	}
	return state{serving: served.Leaf, ca: parseCerts(s.Data[keyCACert])[0], bundle: parseCerts(s.Data[keyCABundle]), secret: s}
}

func serials(certs []*x509.Certificate) []string {
	var out []string
	for _, c := range certs {
		out = append(out, c.SerialNumber.String())
	}
	return out
}

func sameCert(a, b *x509.Certificate) bool { return a.Equal(b) }

func TestFirstStartAndRenewal(t *testing.T) {
	f := newFixture(t)
	s1 := f.check()
	for _, h := range f.m.opts.Hosts {
		if err := s1.serving.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not cover %s: %v", h, err)
		}
	}
	if err := s1.serving.CheckSignatureFrom(s1.ca); err != nil || len(s1.bundle) != 1 || !sameCert(s1.bundle[0], s1.ca) {
		t.Fatalf("first start: certificate signed by the CA: %v; bundle %v, want the CA only", err, serials(s1.bundle))
	}
	if s1.secret.Type != corev1.SecretTypeOpaque {
		t.Errorf("the Secret's type changed to %s", s1.secret.Type)
	}

	f.now = f.now.Add(50 * 24 * time.Hour) // 40 of 90 days left: keep
	if s := f.check(); !sameCert(s.serving, s1.serving) || s.secret.ResourceVersion != s1.secret.ResourceVersion {
		t.Error("wrote the Secret although the certificate had more than a third of its validity left")
	}

	f.now = f.now.Add(20 * 24 * time.Hour) // 20 of 90 days left: renew, same CA, same bundle
	s2 := f.check()
	if sameCert(s2.serving, s1.serving) || !sameCert(s2.ca, s1.ca) || len(s2.bundle) != 1 {
		t.Error("renewing the serving certificate did not keep the CA and its bundle")
	}

	// New host names (the Service was renamed) renew the certificate at once.
	f.m.opts.Hosts = []string{"other.ns.svc"}
	if s := f.check(); s.serving.VerifyHostname("other.ns.svc") != nil || !strings.Contains(s.serving.Subject.CommonName, "other") {
		t.Error("the certificate was not reissued for the new host")
	}
}

// A CA rotation, expiry-driven and then forced, in its two steps: the new CA is
// added to the bundle, and a certificate signed by it is served only a check
// interval later; the previous CA stays in the bundle after the switch; a second
// rotation waits two intervals after the last switch.
func TestCARotationSteps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trigger func(f *fixture)
	}{
		{"the CA expires", func(f *fixture) { f.now = f.now.Add(220 * 24 * time.Hour) }},
		{"forced by annotation", func(f *fixture) { f.annotate(AnnotationRotate, "2026-01-01") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			s0 := f.check()
			tc.trigger(f)
			added := f.check()
			if !sameCert(added.ca, s0.ca) || added.serving.CheckSignatureFrom(s0.ca) != nil {
				t.Fatal("the first step switched the serving certificate to the new CA")
			}
			if len(added.bundle) != 2 || !sameCert(added.bundle[0], s0.ca) {
				t.Fatalf("after the first step the bundle is %v, want the current CA then the new one", serials(added.bundle))
			}
			newCA := added.bundle[1]
			if tc.name == "forced by annotation" && added.secret.Annotations[AnnotationRotated] != "2026-01-01" {
				t.Errorf("the handled rotation was not recorded: annotations %v", added.secret.Annotations)
			}

			f.now = f.now.Add(interval / 2) // not yet a check interval since the bundle held it
			if s := f.check(); !sameCert(s.ca, s0.ca) {
				t.Fatal("switched to the new CA before a check interval passed")
			}
			f.now = f.now.Add(interval / 2)
			switched := f.check()
			if !sameCert(switched.ca, newCA) || switched.serving.CheckSignatureFrom(newCA) != nil {
				t.Fatal("did not switch to the new CA a check interval after trusting it")
			}
			if got := serials(switched.bundle); len(got) != 2 || !sameCert(switched.bundle[0], newCA) || !sameCert(switched.bundle[1], s0.ca) {
				t.Fatalf("after the switch the bundle is %v, want the new CA then the previous one", got)
			}

			// Another forced rotation right away waits: replicas may still serve
			// the previous CA's certificate, which its next switch would drop.
			f.annotate(AnnotationRotate, "again")
			f.now = f.now.Add(interval)
			if s := f.check(); len(s.bundle) != 2 || s.secret.Annotations[AnnotationRotated] == "again" {
				t.Fatalf("a rotation began one interval after the last switch (bundle %v)", serials(s.bundle))
			}
			f.now = f.now.Add(interval)
			if s := f.check(); len(s.bundle) != 3 || s.secret.Annotations[AnnotationRotated] != "again" {
				t.Fatalf("the second rotation did not begin two intervals after the switch: bundle %v", serials(s.bundle))
			}
			f.now = f.now.Add(interval)
			if s := f.check(); len(s.bundle) != 2 || containsCert(s.bundle, s0.ca) || !containsCert(s.bundle, newCA) {
				t.Fatalf("after the second switch the bundle is %v, want the newest CA and the one before", serials(s.bundle))
			}
		})
	}
}

func (f *fixture) annotate(key, value string) {
	f.t.Helper()
	ctx := context.Background()
	s, err := f.client.CoreV1().Secrets("ns").Get(ctx, "tls", metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[key] = value
	if _, err := f.client.CoreV1().Secrets("ns").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

// After the CA expired (a cluster switched off for longer than its validity),
// nothing valid is served: a new CA and certificate at once, not in two steps.
func TestExpiredCAIsReplacedAtOnce(t *testing.T) {
	f := newFixture(t)
	s0 := f.check()
	f.now = f.now.Add(301 * 24 * time.Hour)
	s1 := f.check()
	if sameCert(s1.ca, s0.ca) || s1.serving.CheckSignatureFrom(s1.ca) != nil || !f.now.Before(s1.serving.NotAfter) {
		t.Fatal("an expired CA was not replaced by a new CA and a valid certificate in one step")
	}
	if containsCert(s1.bundle, s0.ca) {
		t.Errorf("the expired CA is still in the bundle %v", serials(s1.bundle))
	}
}

// A replica that read an older Secret never puts its older bundle back.
func TestPublishNeverGoesBack(t *testing.T) {
	f := newFixture(t)
	old := f.check().secret
	f.annotate(AnnotationRotate, "x")
	newer := f.check()
	if _, err := f.m.publish(context.Background(), old); !errors.Is(err, errStale) {
		t.Fatalf("publishing an older generation: %v, want errStale", err)
	}
	cfg, err := f.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), "hook", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.Webhooks[0].ClientConfig.CABundle) != string(newer.secret.Data[keyCABundle]) {
		t.Error("an older bundle replaced the newer one")
	}
}

// A missing Secret is a setup error that says what to do; Start gives up at once.
func TestMissingSecret(t *testing.T) {
	f := newFixture(t)
	if err := f.client.CoreV1().Secrets("ns").Delete(context.Background(), "tls", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err := f.m.Start(context.Background())
	var setup errSetup
	if !errors.As(err, &setup) || !strings.Contains(err.Error(), "kubectl -n ns create secret generic tls") || !strings.Contains(err.Error(), "tls.mode=self-signed") {
		t.Fatalf("error %v, want one naming the Secret and how to create it", err)
	}
}

func TestNewRejectsIncompleteOptions(t *testing.T) {
	if _, err := New(Options{Namespace: "ns"}); err == nil {
		t.Fatal("want an error for missing options")
	}
}
