package selfsigned

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The rotation rules, on a fake clientset (the real API server path is tested in
// pkg/webhook/server).
func TestRenewalRules(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(&admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "hook"},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{{Name: "a.entrypoint.io"}, {Name: "b.entrypoint.io"}},
	})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	opts := Options{
		Client: client, Log: logr.Discard(), Namespace: "ns", SecretName: "tls", WebhookConfigName: "hook",
		Hosts: []string{"svc.ns.svc", "127.0.0.1"}, CAValidity: 300 * 24 * time.Hour, CertValidity: 90 * 24 * time.Hour,
		Now: func() time.Time { return now },
	}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	state := func() (serving, ca *x509.Certificate, bundle string) {
		t.Helper()
		if err := m.reconcile(ctx, false); err != nil {
			t.Fatal(err)
		}
		s, err := client.CoreV1().Secrets("ns").Get(ctx, "tls", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "hook", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range cfg.Webhooks {
			if string(w.ClientConfig.CABundle) != string(s.Data["ca.crt"]) {
				t.Fatalf("webhook %s has caBundle %q, want the Secret's", w.Name, w.ClientConfig.CABundle)
			}
		}
		served, _ := m.GetCertificate(nil)
		if string(served.Certificate[0]) != string(parseCerts(s.Data["tls.crt"])[0].Raw) {
			t.Fatal("the served certificate is not the Secret's")
		}
		return parseCerts(s.Data["tls.crt"])[0], parseCerts(s.Data["ca-current.crt"])[0], string(s.Data["ca.crt"])
	}

	cert1, ca1, bundle1 := state()
	for _, h := range opts.Hosts {
		if err := cert1.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not cover %s: %v", h, err)
		}
	}
	if err := cert1.CheckSignatureFrom(ca1); err != nil {
		t.Fatal(err)
	}

	now = now.Add(50 * 24 * time.Hour) // 40 of 90 days left: keep
	if cert, _, _ := state(); cert.SerialNumber.Cmp(cert1.SerialNumber) != 0 {
		t.Error("renewed a certificate with more than a third of its validity left")
	}

	now = now.Add(20 * 24 * time.Hour) // 20 of 90 days left: renew, same CA, same bundle
	cert2, ca2, bundle2 := state()
	if cert2.SerialNumber.Cmp(cert1.SerialNumber) == 0 {
		t.Error("did not renew a certificate with less than a third of its validity left")
	}
	if ca2.SerialNumber.Cmp(ca1.SerialNumber) != 0 || bundle2 != bundle1 {
		t.Error("renewing the serving certificate replaced the CA")
	}

	now = now.Add(150 * 24 * time.Hour) // CA has 80 of 300 days left: new CA, old one kept in the bundle
	cert3, ca3, bundle3 := state()
	if ca3.SerialNumber.Cmp(ca1.SerialNumber) == 0 || cert3.CheckSignatureFrom(ca3) != nil {
		t.Fatal("the expiring CA was not replaced")
	}
	if got := parseCerts([]byte(bundle3)); len(got) != 2 || got[1].SerialNumber.Cmp(ca1.SerialNumber) != 0 {
		t.Errorf("bundle after CA renewal holds %d certificates, want the new CA then the previous one", len(got))
	}

	// New host names (the Service was renamed) renew the certificate at once.
	m.opts.Hosts = []string{"other.ns.svc"}
	cert4, _, _ := state()
	if cert4.VerifyHostname("other.ns.svc") != nil {
		t.Error("the certificate was not reissued for the new host")
	}
	if !strings.Contains(cert4.Subject.CommonName, "other") {
		t.Errorf("common name %q", cert4.Subject.CommonName)
	}
}

func TestNewRejectsIncompleteOptions(t *testing.T) {
	if _, err := New(Options{Namespace: "ns"}); err == nil {
		t.Fatal("want an error for missing options")
	}
}
