// Package jiraclient sends requests to an installation's Jira, signed with
// OAuth 1.0a RSA-SHA1. It is the only way the plugin reaches the network,
// and it reaches nothing but the installation's own base URL.
package jiraclient

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dghubble/oauth1"
)

// Defaults bound every request: Jira Server under load answers slowly, and
// a plugin call waiting on it holds an instance.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxBodyBytes = 1 << 20
)

// Credentials are what signing needs. They stay in the host.
type Credentials struct {
	BaseURL           string
	ConsumerKey       string
	PrivateKeyPEM     string
	AccessToken       string
	AccessTokenSecret string
	VerifyTLS         bool
}

// Request is one call to Jira's REST API.
type Request struct {
	Method string
	Path   string // must start with /rest/
	Query  url.Values
	Body   string
}

// Response is Jira's answer, with the body cut at MaxBodyBytes.
type Response struct {
	Status int
	Body   []byte
}

// ErrRefused is returned for a request the client will not send.
var ErrRefused = errors.New("request refused")

// ErrUnreachable wraps transport failures: connection refused, TLS, time-out.
var ErrUnreachable = errors.New("jira unreachable")

// Client sends signed requests. The zero value is not usable; use New.
type Client struct {
	Timeout      time.Duration
	MaxBodyBytes int64
	verifying    *http.Transport
	insecure     *http.Transport
}

// New returns a client with its own transports.
func New() *Client {
	// Keep-alives are off on purpose: net/http silently re-sends an
	// idempotent request when a reused connection turns out dead, and a
	// re-sent signed request repeats its nonce, which Jira refuses with
	// oauth_problem=nonce_used. A fresh connection per lookup is cheap next
	// to that, and lookups are cached by the plugin.
	base := func(insecure bool) *http.Transport {
		return &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout: 5 * time.Second,
			DisableKeepAlives:   true,
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: insecure, MinVersion: tls.VersionTLS12}, //nolint:gosec // operator's choice per installation
		}
	}
	return &Client{Timeout: DefaultTimeout, MaxBodyBytes: DefaultMaxBodyBytes, verifying: base(false), insecure: base(true)}
}

// Do sends req to the installation described by creds.
func (c *Client) Do(ctx context.Context, creds Credentials, req Request) (*Response, error) {
	target, err := resolve(creds.BaseURL, req)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKey(creds.PrivateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("installation key: %w", err)
	}
	method := strings.ToUpper(req.Method)
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if req.Body != "" {
		body = strings.NewReader(req.Body)
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, method, target.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	hreq.Header.Set("Accept", "application/json")
	if req.Body != "" {
		hreq.Header.Set("Content-Type", "application/json")
	}
	transport := c.verifying
	if !creds.VerifyTLS {
		transport = c.insecure
	}
	cfg := &oauth1.Config{ConsumerKey: creds.ConsumerKey, Signer: &oauth1.RSASigner{PrivateKey: key}}
	client := oauth1.NewClient(context.WithValue(ctx, oauth1.HTTPClient, &http.Client{Transport: transport}),
		cfg, oauth1.NewToken(creds.AccessToken, creds.AccessTokenSecret))
	// A redirect could lead anywhere, signed: the answer is taken as it is.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", ErrUnreachable, method, target.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.MaxBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("%w: reading answer: %v", ErrUnreachable, err)
	}
	return &Response{Status: resp.StatusCode, Body: b}, nil
}

// resolve joins a REST path to the base URL, refusing anything that would
// leave the installation's Jira or its REST API.
func resolve(baseURL string, req Request) (*url.URL, error) {
	base, err := url.Parse(baseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("%w: installation base URL %q is not an absolute http(s) URL", ErrRefused, baseURL)
	}
	p := req.Path
	if !strings.HasPrefix(p, "/rest/") {
		return nil, fmt.Errorf("%w: path %q is not under /rest/", ErrRefused, p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." {
			return nil, fmt.Errorf("%w: path %q has dot segments", ErrRefused, p)
		}
	}
	if strings.ContainsAny(p, "?#%\\") {
		return nil, fmt.Errorf("%w: path %q has a query, fragment or escape; use Query", ErrRefused, p)
	}
	// Allow-listed, not pattern-denied: servers give other characters
	// meanings of their own (Tomcat reads "..;" as ".." since ";" starts
	// path parameters), so a segment holds unreserved characters only.
	if i := strings.IndexFunc(p, func(c rune) bool { return c != '/' && !unreserved(c) }); i >= 0 {
		return nil, fmt.Errorf("%w: path %q has %q; a path holds only letters, digits, - . _ ~ and /", ErrRefused, p, p[i:i+1])
	}
	query, err := checkQuery(req.Query)
	if err != nil {
		return nil, err
	}
	switch strings.ToUpper(req.Method) {
	case "", http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete:
	default:
		return nil, fmt.Errorf("%w: method %q", ErrRefused, req.Method)
	}
	u := *base
	u.Path = strings.TrimSuffix(base.Path, "/") + p
	u.RawPath = ""
	u.RawQuery = query
	u.Fragment = ""
	return &u, nil
}

// unreserved is RFC 3986's unreserved set: ALPHA DIGIT - . _ ~.
func unreserved(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-._~", c)
}

// checkQuery encodes the query the plugin gave: parameter names are
// unreserved characters (every Jira REST parameter is), values any text
// but control characters, and both are percent-encoded here, so nothing
// in them can end the query or start another part of the URL.
func checkQuery(q url.Values) (string, error) {
	for k, vs := range q {
		if k == "" || strings.IndexFunc(k, func(c rune) bool { return !unreserved(c) }) >= 0 {
			return "", fmt.Errorf("%w: query parameter name %q; names hold only letters, digits, - . _ ~", ErrRefused, k)
		}
		for _, v := range vs {
			if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
				return "", fmt.Errorf("%w: query parameter %s has a control character or invalid UTF-8", ErrRefused, k)
			}
		}
	}
	return q.Encode(), nil
}

// ParsePrivateKey reads an RSA private key in PKCS#1 or PKCS#8 PEM.
func ParsePrivateKey(pemText string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not an RSA private key in PKCS#1 or PKCS#8")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("the key is not an RSA key")
	}
	return rk, nil
}
