package fakejira

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dghubble/oauth1"
)

// The client side of these tests is github.com/dghubble/oauth1, the library
// the product signs with, so the fake's own RFC 5849 code is checked
// against an implementation it shares nothing with.

const (
	consumer      = "jirasync"
	otherConsumer = "other-app"
	token         = "access-1"
	otherToken    = "access-other"
)

// testKeys are generated once: RSA key generation costs more than the tests.
var testKeys = sync.OnceValues(func() ([2]*rsa.PrivateKey, error) {
	var ks [2]*rsa.PrivateKey
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return ks, err
		}
		ks[i] = k
	}
	return ks, nil
})

func keys(t *testing.T) (mine, other *rsa.PrivateKey) {
	t.Helper()
	ks, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	return ks[0], ks[1]
}

var (
	alice = User{Name: "alice", Key: "JIRAUSER10100", EmailAddress: "alice@example.com", DisplayName: "Alice Liddell", Active: true}
	// bob's email is hidden, as with Jira's email visibility turned off.
	bob = User{Name: "bob", Key: "JIRAUSER10101", DisplayName: "Bob", Active: false}
)

// start runs a server with two consumers, each with an access token, and
// two users.
func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	mine, other := keys(t)
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.AddConsumer(consumer, &mine.PublicKey)
	s.AddAccessToken(consumer, token, "secret-1")
	s.AddConsumer(otherConsumer, &other.PublicKey)
	s.AddAccessToken(otherConsumer, otherToken, "secret-other")
	s.AddUser(alice)
	s.AddUser(bob)
	return s
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// signer describes one OAuth client. after runs on the signed request just
// before it is sent, to tamper with it or capture it.
type signer struct {
	consumer string
	key      *rsa.PrivateKey
	token    string
	hmac     bool
	after    func(*http.Request)
}

func (sg signer) client() *http.Client {
	// No keep-alives: SetDown tests must not be fooled by pooled connections.
	base := http.RoundTripper(&http.Transport{DisableKeepAlives: true})
	if sg.after != nil {
		inner := base
		base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			r = r.Clone(r.Context())
			sg.after(r)
			return inner.RoundTrip(r)
		})
	}
	ctx := context.WithValue(context.Background(), oauth1.HTTPClient, &http.Client{Transport: base})
	cfg := &oauth1.Config{ConsumerKey: sg.consumer, Signer: &oauth1.RSASigner{PrivateKey: sg.key}}
	if sg.hmac {
		cfg.Signer = &oauth1.HMACSigner{ConsumerSecret: "consumer-secret"}
	}
	return cfg.Client(ctx, oauth1.NewToken(sg.token, "secret-1"))
}

func plainClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, []byte) {
	t.Helper()
	return readAnswer(t)(c.Get(u))
}

// readAnswer returns a function that fails the test on a transport error
// and otherwise reads the whole answer: readAnswer(t)(client.Do(req)).
func readAnswer(t *testing.T) func(*http.Response, error) (*http.Response, []byte) {
	return func(resp *http.Response, err error) (*http.Response, []byte) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
}

func lastRequest(t *testing.T, s *Server) Request {
	t.Helper()
	rs := s.Requests()
	if len(rs) == 0 {
		t.Fatal("no request recorded")
	}
	return rs[len(rs)-1]
}

// setAuthParam rewrites or, with value "", removes one parameter of a
// signed request's Authorization header.
func setAuthParam(r *http.Request, name, value string) {
	re := regexp.MustCompile(`,? ?` + name + `="[^"]*"`)
	h := re.ReplaceAllString(r.Header.Get("Authorization"), "")
	if value != "" {
		h += `, ` + name + `="` + value + `"`
	}
	r.Header.Set("Authorization", h)
}

// selfSigned signs with the fake's own base string, for requests the oauth1
// library will not make (it always sends oauth_version). The base string
// itself is checked against the RFC and against oauth1 elsewhere.
func selfSigned(key *rsa.PrivateKey, oauth map[string]string) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		var nonce [8]byte
		rand.Read(nonce[:])
		h := `OAuth oauth_timestamp="` + strconv.FormatInt(time.Now().Unix(), 10) + `", oauth_nonce="` + hex.EncodeToString(nonce[:]) + `"`
		for k, v := range oauth {
			h += `, ` + k + `="` + percentEncode(v) + `"`
		}
		r.Header.Set("Authorization", h)
		// The server sees the Host header; the client's URL has the same.
		r.Host = r.URL.Host
		sr, err := gatherSigned(r)
		if err != nil {
			return nil, err
		}
		digest := sha1.Sum([]byte(sr.baseString()))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA1, digest[:])
		if err != nil {
			return nil, err
		}
		r.Header.Set("Authorization", h+`, oauth_signature="`+percentEncode(base64.StdEncoding.EncodeToString(sig))+`"`)
		return (&http.Transport{DisableKeepAlives: true}).RoundTrip(r)
	})}
}

func TestOAuthVerification(t *testing.T) {
	mine, other := keys(t)
	good := signer{consumer: consumer, key: mine, token: token}
	with := func(f func(*signer)) signer { sg := good; f(&sg); return sg }

	tests := []struct {
		name    string
		client  *http.Client
		skew    time.Duration // added to the server's clock
		target  string        // default: alice by username
		want    int
		problem string
		extra   map[string]string // further oauth_* parameters expected in the body
	}{
		{name: "valid", client: good.client(), want: 200},
		{name: "valid with awkward characters in the query", client: good.client(),
			target: "/rest/api/2/user?username=" + url.QueryEscape("o'brien+x y@ü/é~*"), want: 404},
		{name: "clock skew inside the window", client: good.client(), skew: 4 * time.Minute, want: 200},
		{name: "tampered query", problem: ProblemSignatureInvalid, client: with(func(s *signer) {
			s.after = func(r *http.Request) { r.URL.RawQuery = "username=bob" }
		}).client()},
		{name: "tampered path", target: "/rest/api/2/user?username=alice", problem: ProblemSignatureInvalid,
			client: with(func(s *signer) {
				s.after = func(r *http.Request) { r.URL.Path = "/rest/api/2/serverInfo" }
			}).client()},
		{name: "wrong private key", client: with(func(s *signer) { s.key = other }).client(), problem: ProblemSignatureInvalid},
		{name: "unknown consumer", client: with(func(s *signer) { s.consumer = "nobody" }).client(), problem: ProblemConsumerKeyUnknown},
		{name: "unknown token", client: with(func(s *signer) { s.token = "made-up" }).client(), problem: ProblemTokenRejected},
		{name: "token of another consumer", client: with(func(s *signer) { s.token = otherToken }).client(), problem: ProblemTokenRejected},
		{name: "old timestamp", client: good.client(), skew: 10 * time.Minute, problem: ProblemTimestampRefused},
		{name: "future timestamp", client: good.client(), skew: -10 * time.Minute, problem: ProblemTimestampRefused},
		{name: "HMAC-SHA1", client: with(func(s *signer) { s.hmac = true }).client(), problem: ProblemSignatureMethodRejected,
			extra: map[string]string{"oauth_acceptable_signature_methods": "RSA-SHA1"}},
		{name: "version 2.0", problem: ProblemVersionRejected, client: with(func(s *signer) {
			s.after = func(r *http.Request) { setAuthParam(r, "oauth_version", "2.0") }
		}).client(), extra: map[string]string{"oauth_acceptable_versions": "1.0-1.0"}},
		{name: "no version is fine", want: 200, client: selfSigned(mine, map[string]string{
			"oauth_consumer_key": consumer, "oauth_token": token, "oauth_signature_method": "RSA-SHA1"})},
		{name: "header without nonce", problem: ProblemParameterAbsent, client: with(func(s *signer) {
			s.after = func(r *http.Request) { setAuthParam(r, "oauth_nonce", "") }
		}).client(), extra: map[string]string{"oauth_parameters_absent": "oauth_nonce"}},
		{name: "missing header", client: plainClient(), problem: ProblemParameterAbsent},
		{name: "basic auth only", problem: ProblemParameterAbsent, client: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			r = r.Clone(r.Context())
			r.SetBasicAuth("alice", "password")
			return (&http.Transport{DisableKeepAlives: true}).RoundTrip(r)
		})}},
		{name: "signed anonymous endpoint with a bad signature", target: "/rest/api/2/serverInfo",
			client: with(func(s *signer) { s.key = other }).client(), problem: ProblemSignatureInvalid},
		{name: "signed anonymous endpoint", target: "/rest/api/2/serverInfo", client: good.client(), want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			skew := tt.skew
			s := start(t, Config{Now: func() time.Time { return time.Now().Add(skew) }})
			target := tt.target
			if target == "" {
				target = "/rest/api/2/user?username=alice"
			}
			resp, body := get(t, tt.client, s.URL()+target)
			rec := lastRequest(t, s)

			if tt.problem == "" {
				if resp.StatusCode != tt.want {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
				}
				if !rec.Verified || rec.Problem != "" || rec.ConsumerKey != consumer || rec.Token != token {
					t.Errorf("record %+v, want verified for %s/%s", rec, consumer, token)
				}
				return
			}
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", resp.StatusCode, body)
			}
			wantHeader := `OAuth realm="` + percentEncode(s.URL()) + `", oauth_problem="` + tt.problem + `"`
			if h := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, wantHeader) {
				t.Errorf("WWW-Authenticate %q, want prefix %q", h, wantHeader)
			}
			if !strings.HasPrefix(string(body), "oauth_problem="+tt.problem) {
				t.Errorf("body %q does not start with oauth_problem=%s", body, tt.problem)
			}
			form, err := url.ParseQuery(string(body))
			if err != nil {
				t.Fatalf("body %q is not form-encoded: %v", body, err)
			}
			for k, v := range tt.extra {
				if form.Get(k) != v {
					t.Errorf("body %s = %q, want %q", k, form.Get(k), v)
				}
			}
			if tt.problem == ProblemSignatureInvalid && !strings.HasPrefix(form.Get("oauth_signature_base_string"), "GET&http%3A%2F%2F127.0.0.1%3A") {
				t.Errorf("signature_invalid should carry the server's base string, got %q", form.Get("oauth_signature_base_string"))
			}
			if rec.Verified || rec.Problem != tt.problem || rec.Status != http.StatusUnauthorized {
				t.Errorf("record %+v, want problem %s and status 401", rec, tt.problem)
			}
		})
	}
}

func TestReplayedNonce(t *testing.T) {
	mine, _ := keys(t)
	s := start(t, Config{})
	var captured http.Header
	c := signer{consumer: consumer, key: mine, token: token, after: func(r *http.Request) { captured = r.Header.Clone() }}.client()
	u := s.URL() + "/rest/api/2/user?username=alice"
	if resp, body := get(t, c, u); resp.StatusCode != 200 {
		t.Fatalf("first request: %d %s", resp.StatusCode, body)
	}

	replay, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	replay.Header = captured
	resp, err := plainClient().Do(replay)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || string(body) != "oauth_problem="+ProblemNonceUsed {
		t.Fatalf("replay answered %d %q, want 401 oauth_problem=nonce_used", resp.StatusCode, body)
	}
	rs := s.Requests()
	if len(rs) != 2 || !rs[0].Verified || rs[1].Verified || rs[1].Problem != ProblemNonceUsed {
		t.Errorf("records %+v", rs)
	}
}

func TestSignedFormBody(t *testing.T) {
	mine, _ := keys(t)
	s := start(t, Config{})
	post := func(c *http.Client) Request {
		t.Helper()
		resp, err := c.Post(s.URL()+"/rest/api/2/user?username=alice", "application/x-www-form-urlencoded",
			strings.NewReader("name=a+b&x=%7E%21"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return lastRequest(t, s)
	}
	// The user resource takes GET only, so a good signature gets past the
	// OAuth filter and then 405: that the body was part of the signature
	// shows in the tampered case.
	good := signer{consumer: consumer, key: mine, token: token}
	if rec := post(good.client()); !rec.Verified || rec.Status != http.StatusMethodNotAllowed {
		t.Errorf("signed form POST: %+v, want verified and 405", rec)
	}
	tampered := good
	tampered.after = func(r *http.Request) {
		b := "name=a+b&x=changed"
		r.Body, r.ContentLength = io.NopCloser(strings.NewReader(b)), int64(len(b))
	}
	if rec := post(tampered.client()); rec.Verified || rec.Problem != ProblemSignatureInvalid {
		t.Errorf("tampered form POST: %+v, want signature_invalid", rec)
	}
}

func TestConcurrentSignedRequests(t *testing.T) {
	mine, _ := keys(t)
	s := start(t, Config{})
	c := signer{consumer: consumer, key: mine, token: token}.client()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			resp, err := c.Get(s.URL() + "/rest/api/2/user?username=alice&n=" + strconv.Itoa(i))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("request %d: %d", i, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	for _, r := range s.Requests() {
		if !r.Verified || r.Status != 200 {
			t.Errorf("record %+v", r)
		}
	}
}

func TestUserLookup(t *testing.T) {
	mine, _ := keys(t)
	s := start(t, Config{})
	c := signer{consumer: consumer, key: mine, token: token}.client()
	tests := []struct {
		name     string
		query    string
		want     int
		wantName string
		message  string
	}{
		{"by username", "username=alice", 200, "alice", ""},
		{"username is case-insensitive", "username=ALICE", 200, "alice", ""},
		{"by key", "key=JIRAUSER10100", 200, "alice", ""},
		{"key is exact", "key=jirauser10100", 404, "", "The user with the key 'jirauser10100' does not exist"},
		{"username wins over key", "username=bob&key=JIRAUSER10100", 200, "bob", ""},
		{"inactive user", "username=bob", 200, "bob", ""},
		{"unknown user", "username=x", 404, "", "The user named 'x' does not exist"},
		{"no parameter", "", 400, "", "Either the 'username' or the 'key' query parameter must be provided"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, c, s.URL()+"/rest/api/2/user?"+tt.query)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
				t.Errorf("Content-Type %q", ct)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if tt.message != "" {
				want := map[string]any{"errorMessages": []any{tt.message}, "errors": map[string]any{}}
				if string(mustJSON(t, got)) != string(mustJSON(t, want)) {
					t.Errorf("body %s, want %s", body, mustJSON(t, want))
				}
				return
			}
			if got["name"] != tt.wantName {
				t.Errorf("name %v, want %s", got["name"], tt.wantName)
			}
		})
	}

	t.Run("fields", func(t *testing.T) {
		_, body := get(t, c, s.URL()+"/rest/api/2/user?username=alice")
		var got struct {
			Self, Key, Name, EmailAddress, DisplayName, TimeZone, Locale string
			Active                                                       bool
			AvatarURLs                                                   map[string]string `json:"avatarUrls"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if got.Self != s.URL()+"/rest/api/2/user?username=alice" || got.Key != alice.Key || got.Name != alice.Name ||
			got.EmailAddress != alice.EmailAddress || got.DisplayName != alice.DisplayName || !got.Active ||
			got.TimeZone == "" || got.Locale == "" || len(got.AvatarURLs) != 4 {
			t.Errorf("alice answered %s", body)
		}
	})
	t.Run("hidden email is omitted, not empty", func(t *testing.T) {
		_, body := get(t, c, s.URL()+"/rest/api/2/user?username=bob")
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if _, ok := got["emailAddress"]; ok {
			t.Errorf("bob has an emailAddress field: %s", body)
		}
		if got["active"] != false {
			t.Errorf("bob should be inactive: %s", body)
		}
	})
	t.Run("AddUser replaces by name", func(t *testing.T) {
		s.AddUser(User{Name: "Alice", Key: "JIRAUSER10100", EmailAddress: "new@example.com", Active: true})
		_, body := get(t, c, s.URL()+"/rest/api/2/user?username=alice")
		if !strings.Contains(string(body), `"emailAddress":"new@example.com"`) {
			t.Errorf("after replacing: %s", body)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServerInfo(t *testing.T) {
	fixed := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		version     string
		wantVersion string
		numbers     []int
		build       int
	}{
		{"", "9.12.2", []int{9, 12, 2}, 912002},
		{"10.3.1", "10.3.1", []int{10, 3, 1}, 1003001},
		{"8.20", "8.20", []int{8, 20, 0}, 820000},
	}
	for _, tt := range tests {
		t.Run(tt.wantVersion, func(t *testing.T) {
			s := start(t, Config{Version: tt.version, Now: func() time.Time { return fixed }})
			resp, body := get(t, plainClient(), s.URL()+"/rest/api/2/serverInfo")
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			var got struct {
				BaseURL        string `json:"baseUrl"`
				Version        string
				VersionNumbers []int
				DeploymentType string
				BuildNumber    int
				ServerTime     string
				ServerTitle    string
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.BaseURL != s.URL() || got.Version != tt.wantVersion || !equalInts(got.VersionNumbers, tt.numbers) ||
				got.DeploymentType != "Server" || got.BuildNumber != tt.build || got.ServerTitle != "Jira" ||
				got.ServerTime != "2025-03-04T05:06:07.000+0000" {
				t.Errorf("serverInfo %s", body)
			}
			// Anonymous and unsigned: recorded, neither verified nor refused.
			if rec := lastRequest(t, s); rec.Verified || rec.Problem != "" || rec.Status != 200 || !rec.At.Equal(fixed) {
				t.Errorf("record %+v", rec)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStartRefuses(t *testing.T) {
	for _, cfg := range []Config{
		{Version: "nine"},
		{Version: "9.12.2.1"},
		{Addr: "0.0.0.0:0"},
		{Addr: "192.0.2.1:0"},
		{Addr: "localhost"},
	} {
		if s, err := Start(cfg); err == nil {
			s.Close()
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}

func TestNotFoundAndMethod(t *testing.T) {
	s := start(t, Config{})
	tests := []struct {
		method, path string
		want         int
		message      string
	}{
		{http.MethodGet, "/rest/api/2/nope?x=1", 404, "null for uri: " + "%s/rest/api/2/nope?x=1"},
		{http.MethodGet, "/secure/Dashboard.jspa", 404, "null for uri: %s/secure/Dashboard.jspa"},
		{http.MethodDelete, "/rest/api/2/serverInfo", 405, "Method Not Allowed"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, s.URL()+tt.path, nil)
		resp, err := plainClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got errorBody
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		want := strings.ReplaceAll(tt.message, "%s", s.URL())
		if err != nil || resp.StatusCode != tt.want || len(got.ErrorMessages) != 1 || got.ErrorMessages[0] != want || got.Errors == nil {
			t.Errorf("%s %s: %d %+v %v, want %d %q", tt.method, tt.path, resp.StatusCode, got, err, tt.want, want)
		}
	}
}

func TestSetDown(t *testing.T) {
	s := start(t, Config{})
	u := s.URL()
	info := u + "/rest/api/2/serverInfo"
	if resp, _ := get(t, plainClient(), info); resp.StatusCode != 200 {
		t.Fatalf("up: %d", resp.StatusCode)
	}
	for range 2 { // going down twice is not an error
		if err := s.SetDown(true); err != nil {
			t.Fatal(err)
		}
	}
	_, err := plainClient().Get(info)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("while down: %v, want connection refused", err)
	}
	for range 2 {
		if err := s.SetDown(false); err != nil {
			t.Fatal(err)
		}
	}
	if s.URL() != u {
		t.Errorf("URL changed from %s to %s", u, s.URL())
	}
	if resp, _ := get(t, plainClient(), info); resp.StatusCode != 200 {
		t.Fatalf("back up: %d", resp.StatusCode)
	}
	// A refused connection never reached Jira.
	if n := len(s.Requests()); n != 2 {
		t.Errorf("%d requests recorded, want 2", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDown(false); err == nil {
		t.Error("SetDown after Close succeeded")
	}
	if _, err := plainClient().Get(info); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("after Close: %v, want connection refused", err)
	}
}

func TestSetFailure(t *testing.T) {
	mine, _ := keys(t)
	s := start(t, Config{})
	c := signer{consumer: consumer, key: mine, token: token}.client()
	lookup := s.URL() + "/rest/api/2/user?username=alice"
	for _, status := range []int{503, 500} {
		s.SetFailure(status)
		resp, body := get(t, c, lookup)
		if resp.StatusCode != status {
			t.Fatalf("SetFailure(%d): lookup answered %d", status, resp.StatusCode)
		}
		var got errorBody
		if err := json.Unmarshal(body, &got); err != nil || len(got.ErrorMessages) != 1 {
			t.Errorf("SetFailure(%d): body %s", status, body)
		}
		if (status == 503) != (resp.Header.Get("Retry-After") != "") {
			t.Errorf("SetFailure(%d): Retry-After %q", status, resp.Header.Get("Retry-After"))
		}
		// The OAuth check still ran, so a test can tell a failing Jira from
		// a client that signs badly.
		if rec := lastRequest(t, s); !rec.Verified || rec.Status != status {
			t.Errorf("SetFailure(%d): record %+v", status, rec)
		}
		if resp, _ := get(t, plainClient(), s.URL()+"/rest/api/2/serverInfo"); resp.StatusCode != status {
			t.Errorf("SetFailure(%d): serverInfo answered %d", status, resp.StatusCode)
		}
	}
	s.SetFailure(0)
	if resp, body := get(t, c, lookup); resp.StatusCode != 200 {
		t.Errorf("after SetFailure(0): %d %s", resp.StatusCode, body)
	}
}

func TestRequestsAndReset(t *testing.T) {
	mine, _ := keys(t)
	s := start(t, Config{})
	c := signer{consumer: consumer, key: mine, token: token}.client()
	get(t, plainClient(), s.URL()+"/rest/api/2/serverInfo")
	get(t, c, s.URL()+"/rest/api/2/user?username=alice")
	get(t, plainClient(), s.URL()+"/rest/api/2/user?username=alice")
	rs := s.Requests()
	want := []Request{
		{Method: "GET", Path: "/rest/api/2/serverInfo", Status: 200},
		{Method: "GET", Path: "/rest/api/2/user", RawQuery: "username=alice", ConsumerKey: consumer, Token: token, Verified: true, Status: 200},
		{Method: "GET", Path: "/rest/api/2/user", RawQuery: "username=alice", Problem: ProblemParameterAbsent, Status: 401},
	}
	if len(rs) != len(want) {
		t.Fatalf("%d requests, want %d: %+v", len(rs), len(want), rs)
	}
	for i := range want {
		got := rs[i]
		if got.At.IsZero() {
			t.Errorf("request %d has no time", i)
		}
		got.At = time.Time{}
		if got != want[i] {
			t.Errorf("request %d: %+v, want %+v", i, got, want[i])
		}
	}
	s.ResetRequests()
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d requests after reset", n)
	}
}

func TestSendWebhook(t *testing.T) {
	type delivery struct {
		header http.Header
		body   string
	}
	got := make(chan delivery, 2)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), string(b)}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer recv.Close()

	body := []byte(`{"webhookEvent":"jira:issue_updated"}`)
	var ids []string
	for range 2 {
		resp, err := SendWebhook(context.Background(), recv.Client(), recv.URL+"/hook", body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("status %d", resp.StatusCode)
		}
		d := <-got
		if d.body != string(body) {
			t.Errorf("body %q", d.body)
		}
		if ct := d.header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if ua := d.header.Get("User-Agent"); !strings.HasPrefix(ua, "Atlassian HttpClient ") {
			t.Errorf("User-Agent %q", ua)
		}
		id := d.header.Get("X-Atlassian-Webhook-Identifier")
		if id == "" || id != resp.Request.Header.Get("X-Atlassian-Webhook-Identifier") {
			t.Errorf("identifier %q, request had %q", id, resp.Request.Header.Get("X-Atlassian-Webhook-Identifier"))
		}
		ids = append(ids, id)
	}
	if ids[0] == ids[1] {
		t.Errorf("two deliveries share identifier %s", ids[0])
	}
}

func TestParsePublicKeyPEM(t *testing.T) {
	mine, _ := keys(t)
	pkix, err := x509.MarshalPKIXPublicKey(&mine.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pem  []byte
		ok   bool
	}{
		{"PKIX", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}), true},
		{"PKCS#1", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&mine.PublicKey)}), true},
		{"mislabelled PKCS#1", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&mine.PublicKey)}), true},
		{"EC key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}), false},
		{"not PEM", []byte("ssh-rsa AAAA"), false},
	}
	for _, tt := range tests {
		k, err := ParsePublicKeyPEM(tt.pem)
		if tt.ok != (err == nil) {
			t.Errorf("%s: err %v", tt.name, err)
			continue
		}
		if tt.ok && !k.Equal(&mine.PublicKey) {
			t.Errorf("%s: a different key came back", tt.name)
		}
	}
}

// TestStatusList: GET /rest/api/2/status lists the workflow statuses with
// their category as Jira does, only to a signed request, and follows
// SetStatuses and SetFailure.
func TestStatusList(t *testing.T) {
	mine, _ := keys(t)
	s := start(t, Config{})
	c := signer{consumer: consumer, key: mine, token: token}.client()
	type category struct {
		ID  int    `json:"id"`
		Key string `json:"key"`
	}
	type status struct {
		ID, Name, Self string
		StatusCategory category `json:"statusCategory"`
	}
	list := func() []status {
		t.Helper()
		resp, body := get(t, c, s.URL()+"/rest/api/2/status")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		var out []status
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return out
	}
	got := list()
	if len(got) != len(DefaultStatuses) || got[6].ID != "10001" || got[6].Name != "Done" ||
		got[6].StatusCategory != (category{3, "done"}) || got[0].StatusCategory != (category{2, "new"}) ||
		got[1].StatusCategory != (category{4, "indeterminate"}) || got[0].Self != s.URL()+"/rest/api/2/status/1" {
		t.Errorf("default statuses: %+v", got)
	}
	if err := s.SetStatuses([]Status{{ID: "7", Name: "Shipped", Category: "done"}}); err != nil {
		t.Fatal(err)
	}
	if got := list(); len(got) != 1 || got[0].Name != "Shipped" || got[0].StatusCategory.Key != "done" {
		t.Errorf("after SetStatuses: %+v", got)
	}
	if err := s.SetStatuses([]Status{{ID: "8", Category: "finished"}}); err == nil {
		t.Error("SetStatuses took a category Jira does not have")
	}
	resp, body := get(t, plainClient(), s.URL()+"/rest/api/2/status")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned: %d %s, want 401", resp.StatusCode, body)
	}
	s.SetFailure(503)
	if resp, _ := get(t, c, s.URL()+"/rest/api/2/status"); resp.StatusCode != 503 {
		t.Errorf("with a failure set: %d, want 503", resp.StatusCode)
	}
}
