package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
)

// DefaultTemplateDir is where Config looks for templates: the original
// kubernetes-entrypoint mounts each ConfigMap under /configmaps/<file name>/.
const DefaultTemplateDir = "/configmaps"

// Config renders a Go text/template into a file once, atomically: the
// DEPENDENCY_CONFIG item. For Destination /etc/foo/bar.conf the template is
// <TemplateDir>/bar.conf/bar.conf. The template sees:
//
//	.IP         the first IPv4 address of InterfaceName, else its first IPv6 address;
//	            PodIP when InterfaceName is empty
//	.IP_ERLANG  .IP with "." replaced by ",", as Erlang node configuration wants it
//	.HOSTNAME   the host name (the pod name, in Kubernetes)
//
// Values are looked up only when the template uses them, so a template without
// .IP renders even when INTERFACE_NAME is unset. Every failure is terminal:
// neither a missing template nor a missing interface fixes itself.
type Config struct {
	// Destination is the path of the file to write. Its parent directory is
	// created when missing; an existing file is replaced.
	Destination string
	// TemplateDir holds one directory per template; empty means DefaultTemplateDir.
	TemplateDir string
	// InterfaceName is the network interface whose address .IP yields
	// (INTERFACE_NAME).
	InterfaceName string
	// PodIP is .IP when InterfaceName is empty (POD_IP, which the webhook sets
	// from the downward API), so injected pods need no interface name.
	PodIP string
	// InterfaceAddrs lists the addresses of the named interface; nil means the
	// host's interfaces (net.InterfaceByName, then Addrs). Tests replace it.
	InterfaceAddrs func(name string) ([]net.Addr, error)
	// Hostname returns .HOSTNAME; nil means os.Hostname.
	Hostname func() (string, error)
}

// NewConfig returns a Config that renders the template for destination from
// DefaultTemplateDir, with .IP taken from interfaceName.
func NewConfig(destination, interfaceName string) *Config {
	return &Config{Destination: destination, InterfaceName: interfaceName}
}

// String names the dependency: "config /etc/foo/bar.conf".
func (c *Config) String() string {
	return "config " + c.Destination
}

// TemplatePath is the template rendered into Destination:
// <TemplateDir>/<base>/<base>, base being the file name of Destination.
func (c *Config) TemplatePath() string {
	dir := c.TemplateDir
	if dir == "" {
		dir = DefaultTemplateDir
	}
	base := filepath.Base(c.Destination)
	return filepath.Join(dir, base, base)
}

// Wait renders the template once. It returns nil once Destination holds the
// rendered text, ctx.Err() if ctx has already ended, and otherwise an error
// wrapping resolve.ErrTerminal that names the template, the destination and
// the cause.
func (c *Config) Wait(ctx context.Context, report func(resolve.Status)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if report == nil {
		report = func(resolve.Status) {}
	}
	if err := c.render(); err != nil {
		report(resolve.Status{Reason: err.Error()})
		return resolve.Terminal("%s: %v", c, err)
	}
	report(resolve.Status{Ready: true})
	return nil
}

// render does the work of Wait. Its errors name the template and, when the
// destination is at fault, the destination; Wait adds the dependency's name.
func (c *Config) render() error {
	base := filepath.Base(c.Destination)
	if c.Destination == "" || base == "/" || base == "." {
		return fmt.Errorf("destination %q is not a file path", c.Destination)
	}
	templatePath := c.TemplatePath()

	text, err := os.ReadFile(templatePath)
	if err != nil {
		return fmt.Errorf("cannot read template %s: %w", templatePath, pathErrorCause(err))
	}
	tmpl, err := template.New(base).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return fmt.Errorf("template %s is invalid: %w", templatePath, err)
	}
	// Render fully in memory first, so a failing template never touches the
	// destination.
	var out bytes.Buffer
	if err := tmpl.Execute(&out, &templateValues{config: c}); err != nil {
		return fmt.Errorf("cannot render template %s: %w", templatePath, err)
	}
	if err := writeFileAtomically(c.Destination, out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("cannot write %s rendered from %s: %w", c.Destination, templatePath, err)
	}
	return nil
}

// templateValues is the data a config template sees. Its values are methods
// rather than fields so that each is looked up only if the template uses it,
// and so that a failed lookup becomes a template error naming the value.
type templateValues struct {
	config *Config

	ipLooked bool
	ip       string
	ipErr    error
}

// IP is .IP: the first IPv4 address of the interface, else its first IPv6 one.
func (v *templateValues) IP() (string, error) {
	if !v.ipLooked {
		v.ip, v.ipErr = v.config.interfaceIP()
		v.ipLooked = true
	}
	return v.ip, v.ipErr
}

// IP_ERLANG is .IP_ERLANG: .IP written as Erlang writes IPv4 tuples, "10,0,0,7".
// The name is the template contract, underscore and all.
func (v *templateValues) IP_ERLANG() (string, error) { //nolint:revive // var-naming: the name is the templates' contract
	ip, err := v.IP()
	return strings.ReplaceAll(ip, ".", ","), err
}

// HOSTNAME is .HOSTNAME.
func (v *templateValues) HOSTNAME() (string, error) {
	hostname := v.config.Hostname
	if hostname == nil {
		hostname = os.Hostname
	}
	name, err := hostname()
	if err != nil {
		return "", fmt.Errorf("cannot read the host name: %w", err)
	}
	return name, nil
}

// interfaceIP finds the address .IP stands for.
func (c *Config) interfaceIP() (string, error) {
	if c.InterfaceName == "" {
		if c.PodIP != "" {
			return c.PodIP, nil
		}
		return "", errors.New("INTERFACE_NAME and POD_IP are empty, so there is no IP address to render")
	}
	lookup := c.InterfaceAddrs
	if lookup == nil {
		lookup = hostInterfaceAddrs
	}
	addrs, err := lookup(c.InterfaceName)
	if err != nil {
		return "", fmt.Errorf("network interface %q (INTERFACE_NAME): %w", c.InterfaceName, err)
	}

	var firstV6 net.IP
	for _, addr := range addrs {
		ip := addrIP(addr)
		switch {
		case ip == nil:
		case ip.To4() != nil:
			return ip.To4().String(), nil
		case firstV6 == nil:
			firstV6 = ip
		}
	}
	if firstV6 != nil {
		return firstV6.String(), nil
	}
	return "", fmt.Errorf("network interface %q (INTERFACE_NAME) has no IP address", c.InterfaceName)
}

// hostInterfaceAddrs lists the addresses of one of this host's interfaces.
func hostInterfaceAddrs(name string) ([]net.Addr, error) {
	iface, err := net.InterfaceByName(name)
	if err != nil {
		// net says "route ip+net: no such network interface"; keep the cause.
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			return nil, opErr.Err
		}
		return nil, err
	}
	return iface.Addrs()
}

// addrIP extracts the IP of an interface address, nil when it has none.
func addrIP(addr net.Addr) net.IP {
	switch a := addr.(type) {
	case *net.IPNet:
		return a.IP
	case *net.IPAddr:
		return a.IP
	default:
		return nil
	}
}

// pathErrorCause drops the path from a *fs.PathError, for messages that
// already name the path.
func pathErrorCause(err error) error {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	return err
}
