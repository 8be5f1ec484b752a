package spec

import (
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// ParseTCP parses "host:port,..." (IPv6 hosts in brackets). The host is an IP
// address or a DNS name; the port a number from 1 to 65535. Items come back in the
// canonical form of net.JoinHostPort.
func ParseTCP(value string) ([]string, error) {
	return parseList(value, tcpForm, func(item string) (string, []string) {
		host, port, err := net.SplitHostPort(item)
		if err != nil {
			var addrErr *net.AddrError
			if errors.As(err, &addrErr) {
				return "", []string{"is not host:port (" + addrErr.Err + ")"}
			}
			return "", []string{"is not host:port (" + err.Error() + ")"}
		}
		var problems []string
		if p := hostProblem(host); p != "" {
			problems = append(problems, p)
		}
		n, p := parsePort(port)
		if p != "" {
			problems = append(problems, p)
		}
		return net.JoinHostPort(host, strconv.Itoa(n)), problems
	})
}

// ParseHTTP parses "url,..." of absolute http:// or https:// URLs with a host. Items
// come back as written; a comma inside a URL must be percent-encoded (%2C).
func ParseHTTP(value string) ([]string, error) {
	return parseList(value, httpForm, func(item string) (string, []string) {
		u, err := url.Parse(item)
		if err != nil {
			var urlErr *url.Error
			if errors.As(err, &urlErr) {
				err = urlErr.Err
			}
			return "", []string{"is not a URL (" + err.Error() + ")"}
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			if u.Scheme == "" {
				return "", []string{"has no scheme (http:// or https://)"}
			}
			return "", []string{"has scheme " + quote(u.Scheme, maxQuotedItem) + ", which is not http or https"}
		}
		var problems []string
		if u.Hostname() == "" {
			problems = append(problems, "has no host")
		} else if p := hostProblem(u.Hostname()); p != "" {
			problems = append(problems, p)
		}
		if port := u.Port(); port != "" {
			if _, p := parsePort(port); p != "" {
				problems = append(problems, p)
			}
		}
		return item, problems
	})
}

// hostProblem returns "" for an IP address (a zone allowed) or a DNS name, else why
// host is neither.
func hostProblem(host string) string {
	if host == "" {
		return "has an empty host"
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	// DNS names are case-insensitive; Kubernetes' check wants lower case.
	if len(validation.IsDNS1123Subdomain(strings.ToLower(host))) == 0 {
		return ""
	}
	return "has host " + quote(host, maxQuotedItem) + ", which is neither an IP address nor a DNS name"
}

// parsePort returns the port number, or a problem when port is not 1-65535.
func parsePort(port string) (int, string) {
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return 0, "has port " + quote(port, maxQuotedItem) + ", which is not a number from 1 to 65535"
	}
	return int(n), ""
}
