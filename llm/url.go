package llm

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// normalizeURL checks that raw is an http(s) URL with a host and returns it
// with the scheme and host lower-cased and no trailing slash.
func normalizeURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", raw)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL", raw)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("%q has no host", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q: port %s is outside 1-65535", raw, p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "", fmt.Errorf("%q: empty port", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: a query or fragment is not supported", raw)
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// redactURL returns the URL without its user name and password, for
// messages, logs, statistics and cache keys.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// ollamaHostURL turns an OLLAMA_HOST value (host, host:port or a URL) into a
// URL the way the ollama command does: no scheme means http and port 11434.
func ollamaHostURL(v string) (string, error) {
	v = strings.TrimSpace(v)
	scheme, hostport, ok := strings.Cut(v, "://")
	defaultPort := "11434"
	switch {
	case !ok:
		scheme, hostport = "http", v
	case scheme == "http":
		defaultPort = "80"
	case scheme == "https":
		defaultPort = "443"
	}
	hostport, path, _ := strings.Cut(hostport, "/")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.Trim(hostport, "[]"), defaultPort
	}
	if host == "" {
		host = "127.0.0.1"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: path}
	return normalizeURL(u.String())
}

// isLocalHost reports whether the URL's host is on this machine or a private
// network: loopback and private addresses, single-label names and names
// under .local, .lan, .internal or .home.arpa. Such servers may run without
// an API key.
func isLocalHost(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	if ip := net.ParseIP(h); ip != nil {
		return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
	}
	if !strings.Contains(h, ".") {
		return true
	}
	for _, s := range []string{".local", ".lan", ".internal", ".home.arpa"} {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}
