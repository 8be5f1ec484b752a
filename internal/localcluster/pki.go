package localcluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ca signs every certificate of the cluster: serving and client certificates alike.
type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() (*big.Int, error) { return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126)) }

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func newCA(dir string) (*ca, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "ke-cluster-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, "ca.crt"), "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(dir, "ca.key"), key); err != nil {
		return nil, err
	}
	return &ca{cert: cert, key: key}, nil
}

type certSpec struct {
	name   string // file base name: <name>.crt, <name>.key
	cn     string
	orgs   []string
	server bool
	client bool
	dns    []string
	ips    []net.IP
}

func (a *ca) issue(dir string, s certSpec) error {
	key, err := newKey()
	if err != nil {
		return err
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:     s.dns,
		IPAddresses:  s.ips,
	}
	if s.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if s.client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, s.name+".crt"), "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writeKey(filepath.Join(dir, s.name+".key"), key)
}

// identity is one kubeconfig: the base name of its certificate files and its user name.
type identity struct{ name, user string }

// writePKI generates the CA, the serving and client certificates, the service-account
// signing key and one kubeconfig per client, all under <dir>/pki.
func (c *Cluster) writePKI() error {
	dir := c.Path("pki")
	if _, err := os.Stat(filepath.Join(dir, "admin.kubeconfig")); err == nil {
		return nil // written by an earlier up: keep them, kubeconfigs handed out stay valid
	}
	a, err := newCA(dir)
	if err != nil {
		return err
	}
	loopback := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	specs := []certSpec{
		{name: "apiserver", cn: "kube-apiserver", server: true,
			dns: []string{"localhost", c.nodeName, "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + clusterDomain},
			// BridgeGateway: pods reach the API server there with Options.HostOnPodNetwork.
			ips: append([]net.IP{net.ParseIP(serviceIP), net.ParseIP(BridgeGateway)}, loopback...)},
		// The API server's client certificate towards the kubelets (logs, exec, port-forward).
		{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, client: true},
		{name: "kubelet-serving", cn: c.nodeName, server: true, dns: []string{c.nodeName, "localhost"}, ips: loopback},
		{name: "kubelet", cn: "system:node:" + c.nodeName, orgs: []string{"system:nodes"}, client: true},
		{name: "admin", cn: "kubernetes-admin", orgs: []string{"system:masters"}, client: true},
		{name: "controller-manager", cn: "system:kube-controller-manager", client: true},
		{name: "scheduler", cn: "system:kube-scheduler", client: true},
		// Serving certificates of the two control-plane components' secure ports.
		{name: "controller-manager-serving", cn: "kube-controller-manager", server: true, dns: []string{"localhost"}, ips: loopback},
		{name: "scheduler-serving", cn: "kube-scheduler", server: true, dns: []string{"localhost"}, ips: loopback},
	}
	for _, s := range specs {
		if err := a.issue(dir, s); err != nil {
			return fmt.Errorf("certificate %s: %w", s.name, err)
		}
	}
	// Service-account tokens: the API server signs with the private key, verifies with the
	// public one; the controller manager signs the legacy token secrets with the private key.
	sa, err := newKey()
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "sa.key"), sa); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(sa.Public())
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub, 0o644); err != nil {
		return err
	}
	for _, id := range []identity{{"admin", "kubernetes-admin"}, {"controller-manager", "system:kube-controller-manager"},
		{"scheduler", "system:kube-scheduler"}, {"kubelet", "system:node:" + c.nodeName}} {
		if err := c.writeKubeconfig(id); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) writeKubeconfig(id identity) error {
	dir := c.Path("pki")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["ke-cluster"] = &clientcmdapi.Cluster{
		Server:               c.apiserverURL(),
		CertificateAuthority: filepath.Join(dir, "ca.crt"),
	}
	cfg.AuthInfos[id.user] = &clientcmdapi.AuthInfo{
		ClientCertificate: filepath.Join(dir, id.name+".crt"),
		ClientKey:         filepath.Join(dir, id.name+".key"),
	}
	cfg.Contexts["ke-cluster"] = &clientcmdapi.Context{Cluster: "ke-cluster", AuthInfo: id.user, Namespace: "default"}
	cfg.CurrentContext = "ke-cluster"
	return clientcmd.WriteToFile(*cfg, filepath.Join(dir, id.name+".kubeconfig"))
}
