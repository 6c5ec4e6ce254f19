package jiraclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/dghubble/oauth1"
)

// The OAuth 1.0a dance with Jira (RFC 5849 §2), RSA-SHA1 signed. The
// private key and token secrets never leave the host.

// ErrTLS wraps a failed TLS handshake or certificate check.
var ErrTLS = errors.New("TLS failed")

// OAuthError is Jira refusing a step of the dance.
type OAuthError struct {
	Status  int
	Problem string // oauth_problem, when Jira named one
	Body    string
}

func (e *OAuthError) Error() string {
	if e.Problem != "" {
		return fmt.Sprintf("Jira answered HTTP %d, oauth_problem=%s", e.Status, e.Problem)
	}
	return fmt.Sprintf("Jira answered HTTP %d: %.200s", e.Status, e.Body)
}

// Endpoints are Jira Server's OAuth endpoints under a base URL.
func Endpoints(baseURL string) oauth1.Endpoint {
	b := strings.TrimSuffix(baseURL, "/")
	return oauth1.Endpoint{
		RequestTokenURL: b + "/plugins/servlet/oauth/request-token",
		AuthorizeURL:    b + "/plugins/servlet/oauth/authorize",
		AccessTokenURL:  b + "/plugins/servlet/oauth/access-token",
	}
}

func (c *Client) oauthConfig(creds Credentials, callback string) (*oauth1.Config, error) {
	key, err := ParsePrivateKey(creds.PrivateKeyPEM)
	if err != nil {
		return nil, err
	}
	transport := c.verifying
	if !creds.VerifyTLS {
		transport = c.insecure
	}
	return &oauth1.Config{
		ConsumerKey: creds.ConsumerKey,
		CallbackURL: callback,
		Endpoint:    Endpoints(creds.BaseURL),
		Signer:      &oauth1.RSASigner{PrivateKey: key},
		// Same rules as REST calls: bounded, no redirects, no re-sent
		// nonce (keep-alives off).
		HTTPClient: &http.Client{Transport: transport, Timeout: c.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}, nil
}

// RequestToken obtains a request token (temporary credentials) for the
// operator to approve on Jira, with callback as oauth_callback: without it
// Jira leaves the operator on its "Access Approved" page.
func (c *Client) RequestToken(ctx context.Context, creds Credentials, callback string) (token, secret string, err error) {
	cfg, err := c.oauthConfig(creds, callback)
	if err != nil {
		return "", "", err
	}
	token, secret, err = withContext(ctx, func() (string, string, error) { return cfg.RequestToken() })
	return token, secret, classify(err)
}

// AuthorizeURL is where the operator approves a request token.
func AuthorizeURL(baseURL, requestToken string) string {
	return Endpoints(baseURL).AuthorizeURL + "?oauth_token=" + url.QueryEscape(requestToken)
}

// AccessToken exchanges an approved request token and its verifier for
// an access token.
func (c *Client) AccessToken(ctx context.Context, creds Credentials, requestToken, requestSecret, verifier string) (token, secret string, err error) {
	cfg, err := c.oauthConfig(creds, "")
	if err != nil {
		return "", "", err
	}
	token, secret, err = withContext(ctx, func() (string, string, error) {
		return cfg.AccessToken(requestToken, requestSecret, verifier)
	})
	return token, secret, classify(err)
}

// withContext runs f, giving up waiting when ctx is done (the client's own
// time-out still ends the request).
func withContext(ctx context.Context, f func() (string, string, error)) (string, string, error) {
	type result struct {
		a, b string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		a, b, err := f()
		ch <- result{a, b, err}
	}()
	select {
	case r := <-ch:
		return r.a, r.b, r.err
	case <-ctx.Done():
		return "", "", fmt.Errorf("%w: %v", ErrUnreachable, ctx.Err())
	}
}

var (
	statusRE  = regexp.MustCompile(`^oauth1: invalid status (\d+): (?s)(.*)$`)
	problemRE = regexp.MustCompile(`oauth_problem=([a-z_]+)`)
)

// classify turns the oauth1 library's errors into ours.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if m := statusRE.FindStringSubmatch(err.Error()); m != nil {
		e := &OAuthError{Body: m[2]}
		fmt.Sscan(m[1], &e.Status)
		if p := problemRE.FindStringSubmatch(m[2]); p != nil {
			e.Problem = p[1]
		}
		return e
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		var cert x509.UnknownAuthorityError
		var host x509.HostnameError
		var rec tls.RecordHeaderError
		var verr *tls.CertificateVerificationError
		if errors.As(err, &cert) || errors.As(err, &host) || errors.As(err, &rec) || errors.As(err, &verr) {
			return fmt.Errorf("%w: %v", ErrTLS, err)
		}
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	if errors.Is(err, ErrUnreachable) {
		return err
	}
	// A 200 without the tokens, or without oauth_callback_confirmed.
	return &OAuthError{Status: http.StatusOK, Body: err.Error()}
}
