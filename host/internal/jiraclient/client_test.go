package jiraclient

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

func testCreds(t *testing.T, base string) Credentials {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return Credentials{BaseURL: base, ConsumerKey: "jirasync", PrivateKeyPEM: string(p), AccessToken: "tok", VerifyTLS: true}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		base, method, path string
		query              url.Values
		want               string // "" means refused
	}{
		{"https://jira.example.com", "GET", "/rest/api/2/user", url.Values{"username": {"a b&c"}}, "https://jira.example.com/rest/api/2/user?username=a+b%26c"},
		{"https://jira.example.com/jira/", "", "/rest/api/2/serverInfo", nil, "https://jira.example.com/jira/rest/api/2/serverInfo"},
		{"https://jira.example.com", "GET", "/plugins/servlet/oauth/authorize", nil, ""},
		{"https://jira.example.com", "GET", "//evil.example/rest/x", nil, ""},
		{"https://jira.example.com", "GET", "/rest/../secure/admin", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/user?username=x", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/%2e%2e/x", nil, ""},
		{"https://jira.example.com", "PATCH", "/rest/api/2/user", nil, ""},
		{"ftp://jira.example.com", "GET", "/rest/api/2/user", nil, ""},
		{"jira.example.com", "GET", "/rest/api/2/user", nil, ""},
		// Only unreserved characters and / in the path: Tomcat reads "..;"
		// as "..", and ";" starts path parameters anywhere.
		{"https://jira.example.com", "GET", "/rest/..;/secure/admin", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/..;/..;/secure", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/user;jsessionid=x", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/issue/APP-1;x", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/issue/APP 1", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/issue/APP-1\x00", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/issue/APP-1\t", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/user@evil.example", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/user:x", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/issue/Ä", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/issue/a+b", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/issue/a,b", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/issue/a!b'(c)*$=&", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/issue/%41", nil, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/issue/APP-1.x_y~z", nil, "https://jira.example.com/rest/api/2/issue/APP-1.x_y~z"},
		// The query is parsed values, re-encoded; names are allow-listed.
		{"https://jira.example.com", "GET", "/rest/api/2/user", url.Values{"username": {"../..;/x#y?z=1&w"}},
			"https://jira.example.com/rest/api/2/user?username=..%2F..%3B%2Fx%23y%3Fz%3D1%26w"},
		{"https://jira.example.com", "GET", "/rest/api/2/user", url.Values{"a;b": {"1"}}, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/user", url.Values{"a=b": {"1"}}, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/user", url.Values{"": {"1"}}, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/user", url.Values{"username": {"a\rb"}}, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/user", url.Values{"username": {"a\x00"}}, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/user", url.Values{"username": {"\xff"}}, ""},
		{"https://jira.example.com", "GET", "/rest/api/2/user", url.Values{"username": {"Zoë Ünal"}}, "https://jira.example.com/rest/api/2/user?username=Zo%C3%AB+%C3%9Cnal"},
	}
	for _, tt := range tests {
		u, err := resolve(tt.base, Request{Method: tt.method, Path: tt.path, Query: tt.query})
		if tt.want == "" {
			if !errors.Is(err, ErrRefused) {
				t.Errorf("resolve(%s, %s %s) = %v, %v; want refused", tt.base, tt.method, tt.path, u, err)
			}
			continue
		}
		if err != nil || u.String() != tt.want {
			t.Errorf("resolve(%s, %s) = %v, %v; want %s", tt.base, tt.path, u, err, tt.want)
		}
	}
}

func TestDoSignsAndDoesNotFollowRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	var auth string
	jira := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	}))
	defer jira.Close()

	c := New()
	resp, err := c.Do(context.Background(), testCreds(t, jira.URL), Request{Method: "GET", Path: "/rest/api/2/user", Query: url.Values{"username": {"alice"}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusFound {
		t.Errorf("status %d, want the redirect itself (302)", resp.Status)
	}
	if elsewhere.Load() != 0 {
		t.Error("the client followed a redirect away from the installation's Jira")
	}
	for _, want := range []string{`OAuth `, `oauth_signature_method="RSA-SHA1"`, `oauth_consumer_key="jirasync"`, `oauth_token="tok"`, `oauth_nonce=`, `oauth_signature=`} {
		if !strings.Contains(auth, want) {
			t.Errorf("Authorization %q lacks %s", auth, want)
		}
	}
}

func TestDoTLS(t *testing.T) {
	jira := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	defer jira.Close()
	creds := testCreds(t, jira.URL)
	c := New()
	if _, err := c.Do(context.Background(), creds, Request{Path: "/rest/api/2/serverInfo"}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("self-signed certificate with verification on: %v, want ErrUnreachable", err)
	}
	creds.VerifyTLS = false
	if resp, err := c.Do(context.Background(), creds, Request{Path: "/rest/api/2/serverInfo"}); err != nil || resp.Status != 200 {
		t.Errorf("verification off: %v, %v", resp, err)
	}
}

func TestDoUnreachableAndBadKey(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := New()
	creds := testCreds(t, "http://"+addr)
	if _, err := c.Do(context.Background(), creds, Request{Path: "/rest/api/2/user"}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("closed port: %v, want ErrUnreachable", err)
	}
	creds.PrivateKeyPEM = "not a key"
	if _, err := c.Do(context.Background(), creds, Request{Path: "/rest/api/2/user"}); err == nil || errors.Is(err, ErrUnreachable) {
		t.Errorf("bad key: %v, want a key error", err)
	}
}

func TestBodyIsBounded(t *testing.T) {
	jira := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 4096)))
	}))
	defer jira.Close()
	c := New()
	c.MaxBodyBytes = 100
	resp, err := c.Do(context.Background(), testCreds(t, jira.URL), Request{Path: "/rest/api/2/user"})
	if err != nil || len(resp.Body) != 100 {
		t.Fatalf("body %d bytes, %v; want cut at 100", len(resp.Body), err)
	}
}
