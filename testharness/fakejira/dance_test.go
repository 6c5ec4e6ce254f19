package fakejira

import (
	"crypto/rsa"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dghubble/oauth1"
)

// The dance is driven with github.com/dghubble/oauth1, the product's OAuth
// client, exactly as the product drives it: RequestToken, the user's
// browser on the authorize page (a client that stops at the redirect, so
// the test reads where Jira sends the user), AccessToken, then a REST call.

// movableClock is a server clock tests can move forward without waiting.
type movableClock struct{ offset atomic.Int64 }

func (c *movableClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *movableClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// startDance runs a server with the usual consumers on a movable clock.
func startDance(t *testing.T) (*Server, *movableClock) {
	t.Helper()
	clock := &movableClock{}
	return start(t, Config{Now: clock.now}), clock
}

func danceConfig(s *Server, consumerKey string, key *rsa.PrivateKey, callback string) *oauth1.Config {
	return &oauth1.Config{
		ConsumerKey: consumerKey,
		CallbackURL: callback,
		Endpoint: oauth1.Endpoint{
			RequestTokenURL: s.URL() + "/plugins/servlet/oauth/request-token",
			AuthorizeURL:    s.URL() + "/plugins/servlet/oauth/authorize",
			AccessTokenURL:  s.URL() + "/plugins/servlet/oauth/access-token",
		},
		Signer:     &oauth1.RSASigner{PrivateKey: key},
		HTTPClient: plainClient(),
	}
}

// browserClient is the user's browser, stopping at redirects.
func browserClient() *http.Client {
	c := plainClient()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func mustRequestToken(t *testing.T, cfg *oauth1.Config) (tok, secret string) {
	t.Helper()
	tok, secret, err := cfg.RequestToken()
	if err != nil {
		t.Fatalf("request token: %v", err)
	}
	return tok, secret
}

// press submits the authorize form with one of its buttons, "approve" or
// "deny" (or "" for neither), as a browser would.
func press(t *testing.T, s *Server, tok, button string) (*http.Response, string) {
	t.Helper()
	form := url.Values{"oauth_token": {tok}}
	switch button {
	case "approve":
		form.Set("approve", "Allow")
	case "deny":
		form.Set("deny", "Deny")
	}
	resp, b := readAnswer(t)(browserClient().PostForm(s.URL()+"/plugins/servlet/oauth/authorize", form))
	return resp, string(b)
}

// approveOnPage opens the authorize page, presses Allow and returns the
// verifier from the redirect to the callback.
func approveOnPage(t *testing.T, s *Server, cfg *oauth1.Config, tok string) string {
	t.Helper()
	page, err := cfg.AuthorizationURL(tok)
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, browserClient(), page.String()); resp.StatusCode != 200 || !strings.Contains(string(body), `id="approve"`) {
		t.Fatalf("authorize page: %d %s", resp.StatusCode, body)
	}
	resp, body := press(t, s, tok, "approve")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("approve answered %d: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Query().Get("oauth_token") != tok || loc.Query().Get("oauth_verifier") == "" {
		t.Fatalf("redirect %s lacks the token or the verifier", loc)
	}
	return loc.Query().Get("oauth_verifier")
}

var problemInError = regexp.MustCompile(`oauth1: invalid status (\d+): oauth_problem=([a-z_]+)`)

// problemOf reads the oauth_problem from an oauth1 library error.
func problemOf(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("the step succeeded, want an oauth_problem")
	}
	m := problemInError.FindStringSubmatch(err.Error())
	if m == nil || m[1] != "401" {
		t.Fatalf("error %q is not a 401 with an oauth_problem", err)
	}
	return m[2]
}

func TestOAuthDance(t *testing.T) {
	mine, _ := keys(t)
	tests := []struct {
		name     string
		callback string
		// approve returns the verifier the consumer ends up with.
		approve func(t *testing.T, s *Server, cfg *oauth1.Config, tok string) string
	}{
		{"browser, callback with a query", "http://127.0.0.1:9/setup/callback?state=a%2Fb&x=1", approveOnPage},
		{"browser, out of band", "oob", func(t *testing.T, s *Server, _ *oauth1.Config, tok string) string {
			resp, body := press(t, s, tok, "approve")
			m := regexp.MustCompile(`<code id="verifier">([^<]+)</code>`).FindStringSubmatch(body)
			if resp.StatusCode != 200 || m == nil {
				t.Fatalf("oob approval: %d %s", resp.StatusCode, body)
			}
			return m[1]
		}},
		{"programmatic", "https://host.example/cb", func(t *testing.T, s *Server, _ *oauth1.Config, tok string) string {
			v, err := s.Approve(tok)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startDance(t)
			cfg := danceConfig(s, consumer, mine, tt.callback)
			reqTok, reqSecret := mustRequestToken(t, cfg)
			if rec := lastRequest(t, s); !rec.Verified || rec.ConsumerKey != consumer || rec.Token != "" {
				t.Errorf("request-token record %+v", rec)
			}

			// A request token opens nothing before it is exchanged.
			early := signer{consumer: consumer, key: mine, token: reqTok}.client()
			if resp, _ := get(t, early, s.URL()+"/rest/api/2/user?username=alice"); resp.StatusCode != 401 ||
				lastRequest(t, s).Problem != ProblemTokenRejected {
				t.Errorf("REST with a request token: %d %+v", resp.StatusCode, lastRequest(t, s))
			}

			verifier := tt.approve(t, s, cfg, reqTok)
			accTok, accSecret, err := cfg.AccessToken(reqTok, reqSecret, verifier)
			if err != nil {
				t.Fatalf("access token: %v", err)
			}
			if accTok == reqTok || accSecret == "" {
				t.Errorf("access token %q secret %q", accTok, accSecret)
			}
			if got := s.AccessTokens(consumer); len(got) != 2 || !contains(got, accTok) || !contains(got, token) {
				t.Errorf("AccessTokens = %v, want %s and %s", got, token, accTok)
			}
			if got := s.AccessTokens(otherConsumer); len(got) != 1 || got[0] != otherToken {
				t.Errorf("AccessTokens(other) = %v", got)
			}

			// The issued token works like one added with AddAccessToken.
			c := cfg.Client(t.Context(), oauth1.NewToken(accTok, accSecret))
			resp, body := get(t, c, s.URL()+"/rest/api/2/user?username=alice")
			if resp.StatusCode != 200 {
				t.Fatalf("REST with the access token: %d %s", resp.StatusCode, body)
			}
			if rec := lastRequest(t, s); !rec.Verified || rec.Token != accTok {
				t.Errorf("REST record %+v", rec)
			}
		})
	}
}

func TestOAuthDanceAnswers(t *testing.T) {
	// The library hides the extra fields of the answers; read them raw.
	mine, _ := keys(t)
	s, _ := startDance(t)
	post := func(c *http.Client, path string) (*http.Response, url.Values) {
		t.Helper()
		resp, err := c.Post(s.URL()+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		v, err := url.ParseQuery(string(b))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %q %v", path, resp.StatusCode, b, err)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("%s: Content-Type %q", path, ct)
		}
		return resp, v
	}
	_, rt := post(selfSigned(mine, map[string]string{"oauth_consumer_key": consumer, "oauth_signature_method": "RSA-SHA1",
		"oauth_callback": "http://127.0.0.1:9/cb"}), "/plugins/servlet/oauth/request-token")
	if rt.Get("oauth_token") == "" || rt.Get("oauth_token_secret") == "" || rt.Get("oauth_callback_confirmed") != "true" || len(rt) != 3 {
		t.Fatalf("request-token answer %v", rt)
	}
	verifier, err := s.Approve(rt.Get("oauth_token"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve(rt.Get("oauth_token")); !errors.Is(err, ErrInvalidRequestToken) {
		t.Errorf("second Approve: %v", err)
	}
	_, at := post(selfSigned(mine, map[string]string{"oauth_consumer_key": consumer, "oauth_signature_method": "RSA-SHA1",
		"oauth_token": rt.Get("oauth_token"), "oauth_verifier": verifier}), "/plugins/servlet/oauth/access-token")
	for k, want := range map[string]string{"oauth_expires_in": "157680000", "oauth_authorization_expires_in": "157680000"} {
		if at.Get(k) != want {
			t.Errorf("%s = %q, want %s", k, at.Get(k), want)
		}
	}
	if at.Get("oauth_token") == "" || at.Get("oauth_token_secret") == "" || at.Get("oauth_session_handle") == "" {
		t.Errorf("access-token answer %v", at)
	}
}

func TestRequestTokenRefused(t *testing.T) {
	mine, other := keys(t)
	tests := []struct {
		name    string
		change  func(*oauth1.Config)
		skew    time.Duration
		problem string
		extra   map[string]string
	}{
		{name: "unknown consumer", change: func(c *oauth1.Config) { c.ConsumerKey = "nobody" }, problem: ProblemConsumerKeyUnknown},
		{name: "wrong private key", change: func(c *oauth1.Config) { c.Signer = &oauth1.RSASigner{PrivateKey: other} }, problem: ProblemSignatureInvalid},
		{name: "HMAC-SHA1", change: func(c *oauth1.Config) { c.Signer = &oauth1.HMACSigner{ConsumerSecret: "x"} },
			problem: ProblemSignatureMethodRejected, extra: map[string]string{"oauth_acceptable_signature_methods": "RSA-SHA1"}},
		// oauth1 sends oauth_callback="" when there is none.
		{name: "no callback", change: func(c *oauth1.Config) { c.CallbackURL = "" },
			problem: ProblemParameterAbsent, extra: map[string]string{"oauth_parameters_absent": "oauth_callback"}},
		{name: "relative callback", change: func(c *oauth1.Config) { c.CallbackURL = "/setup/callback" },
			problem: ProblemParameterRejected, extra: map[string]string{"oauth_parameters_rejected": "oauth_callback"}},
		{name: "javascript callback", change: func(c *oauth1.Config) { c.CallbackURL = "javascript:alert(1)" }, problem: ProblemParameterRejected},
		{name: "old timestamp", skew: 6 * time.Minute, problem: ProblemTimestampRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := startDance(t)
			clock.advance(tt.skew)
			cfg := danceConfig(s, consumer, mine, "http://127.0.0.1:9/cb")
			if tt.change != nil {
				tt.change(cfg)
			}
			_, _, err := cfg.RequestToken()
			if got := problemOf(t, err); got != tt.problem {
				t.Fatalf("oauth_problem=%s, want %s", got, tt.problem)
			}
			form, _ := url.ParseQuery(strings.SplitN(err.Error(), ": ", 3)[2])
			for k, v := range tt.extra {
				if form.Get(k) != v {
					t.Errorf("%s = %q, want %q (%s)", k, form.Get(k), v, err)
				}
			}
			if rec := lastRequest(t, s); rec.Verified || rec.Problem != tt.problem || rec.Status != 401 {
				t.Errorf("record %+v", rec)
			}
		})
	}

	t.Run("replayed request", func(t *testing.T) {
		s, _ := startDance(t)
		cfg := danceConfig(s, consumer, mine, "http://127.0.0.1:9/cb")
		var captured http.Header
		cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			captured = r.Header.Clone()
			return (&http.Transport{DisableKeepAlives: true}).RoundTrip(r)
		})}
		mustRequestToken(t, cfg)
		replay, _ := http.NewRequest(http.MethodPost, cfg.Endpoint.RequestTokenURL, nil)
		replay.Header = captured
		resp, err := plainClient().Do(replay)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || string(b) != "oauth_problem="+ProblemNonceUsed {
			t.Errorf("replay answered %d %q", resp.StatusCode, b)
		}
	})
}

func TestAccessTokenRefused(t *testing.T) {
	mine, other := keys(t)
	approve := func(t *testing.T, s *Server, tok string) string {
		t.Helper()
		v, err := s.Approve(tok)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		// prepare acts for the user and the clock, and returns the
		// verifier the consumer sends.
		prepare func(t *testing.T, s *Server, clock *movableClock, cfg *oauth1.Config, tok, secret string) string
		// exchanger is the consumer exchanging, when not the one that asked.
		exchanger func(s *Server) *oauth1.Config
		// token replaces the request token sent, when set.
		token   string
		problem string
		// stillExchangeable: the refusal must not have used up the token.
		stillExchangeable bool
	}{
		{name: "not approved yet", problem: ProblemPermissionUnknown, stillExchangeable: true,
			prepare: func(*testing.T, *Server, *movableClock, *oauth1.Config, string, string) string { return "guess" }},
		{name: "no verifier", problem: ProblemParameterAbsent, stillExchangeable: true,
			prepare: func(t *testing.T, s *Server, _ *movableClock, _ *oauth1.Config, tok, _ string) string {
				approve(t, s, tok)
				return ""
			}},
		{name: "denied", problem: ProblemPermissionDenied,
			prepare: func(t *testing.T, s *Server, _ *movableClock, _ *oauth1.Config, tok, _ string) string {
				if resp, body := press(t, s, tok, "deny"); resp.StatusCode != http.StatusFound {
					t.Fatalf("deny answered %d %s", resp.StatusCode, body)
				}
				return "guess"
			}},
		{name: "wrong verifier", problem: ProblemTokenRejected, stillExchangeable: true,
			prepare: func(t *testing.T, s *Server, _ *movableClock, _ *oauth1.Config, tok, _ string) string {
				return approve(t, s, tok) + "x"
			}},
		{name: "reused request token", problem: ProblemTokenUsed,
			prepare: func(t *testing.T, s *Server, _ *movableClock, cfg *oauth1.Config, tok, secret string) string {
				v := approve(t, s, tok)
				if _, _, err := cfg.AccessToken(tok, secret, v); err != nil {
					t.Fatalf("first exchange: %v", err)
				}
				return v
			}},
		{name: "expired request token", problem: ProblemTokenExpired,
			prepare: func(t *testing.T, s *Server, clock *movableClock, _ *oauth1.Config, tok, _ string) string {
				v := approve(t, s, tok)
				// The client's clock stays put, so its timestamp is off by
				// more than the window too: token_expired must still win,
				// as in Jira, which checks the token first.
				clock.advance(requestTokenLife + time.Second)
				return v
			}},
		{name: "another consumer's request token", problem: ProblemTokenRejected, stillExchangeable: true,
			exchanger: func(s *Server) *oauth1.Config { return danceConfig(s, otherConsumer, other, "") },
			prepare: func(t *testing.T, s *Server, _ *movableClock, _ *oauth1.Config, tok, _ string) string {
				return approve(t, s, tok)
			}},
		{name: "signed with the wrong key", problem: ProblemSignatureInvalid, stillExchangeable: true,
			exchanger: func(s *Server) *oauth1.Config { return danceConfig(s, consumer, other, "") },
			prepare: func(t *testing.T, s *Server, _ *movableClock, _ *oauth1.Config, tok, _ string) string {
				return approve(t, s, tok)
			}},
		{name: "an access token instead", problem: ProblemTokenRejected, token: token,
			prepare: func(*testing.T, *Server, *movableClock, *oauth1.Config, string, string) string { return "x" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := startDance(t)
			cfg := danceConfig(s, consumer, mine, "http://127.0.0.1:9/cb")
			tok, secret := mustRequestToken(t, cfg)
			verifier := tt.prepare(t, s, clock, cfg, tok, secret)
			exchanger := cfg
			if tt.exchanger != nil {
				exchanger = tt.exchanger(s)
			}
			sent := tok
			if tt.token != "" {
				sent = tt.token
			}
			_, _, err := exchanger.AccessToken(sent, secret, verifier)
			if got := problemOf(t, err); got != tt.problem {
				t.Fatalf("oauth_problem=%s, want %s", got, tt.problem)
			}
			if rec := lastRequest(t, s); rec.Verified || rec.Problem != tt.problem || rec.Token != sent {
				t.Errorf("record %+v", rec)
			}
			if !tt.stillExchangeable {
				return
			}
			// The honest consumer, with the user's approval, still gets its
			// access token. Approve fails harmlessly when prepare approved.
			s.Approve(tok)
			if _, _, err := cfg.AccessToken(tok, secret, verifierOf(t, s, tok)); err != nil {
				t.Errorf("the refusal used up the request token: %v", err)
			}
		})
	}
}

// verifierOf reads the verifier recorded for an approved request token.
func verifierOf(t *testing.T, s *Server, tok string) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.tokens[tok].verifier
	if v == "" {
		t.Fatalf("request token %s has no verifier", tok)
	}
	return v
}

func TestConcurrentExchangeWinsOnce(t *testing.T) {
	mine, _ := keys(t)
	s, _ := startDance(t)
	cfg := danceConfig(s, consumer, mine, "http://127.0.0.1:9/cb")
	tok, secret := mustRequestToken(t, cfg)
	v, err := s.Approve(tok)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg       sync.WaitGroup
		ok, used atomic.Int32
	)
	for range 8 {
		wg.Go(func() {
			_, _, err := cfg.AccessToken(tok, secret, v)
			switch {
			case err == nil:
				ok.Add(1)
			case strings.Contains(err.Error(), "oauth_problem="+ProblemTokenUsed):
				used.Add(1)
			default:
				t.Errorf("exchange: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || used.Load() != 7 {
		t.Errorf("%d exchanges succeeded and %d got token_used, want 1 and 7", ok.Load(), used.Load())
	}
	if n := len(s.AccessTokens(consumer)); n != 2 {
		t.Errorf("%d access tokens, want 2", n)
	}
}

func TestAuthorizePage(t *testing.T) {
	mine, _ := keys(t)
	const callback = "http://127.0.0.1:9/setup/callback?state=a%2Fb"
	tests := []struct {
		name     string
		callback string
		// act drives the page and checks the answer.
		act func(t *testing.T, s *Server, clock *movableClock, tok string)
	}{
		{name: "page asks", callback: callback, act: func(t *testing.T, s *Server, _ *movableClock, tok string) {
			resp, b := get(t, browserClient(), s.URL()+"/plugins/servlet/oauth/authorize?oauth_token="+url.QueryEscape(tok))
			body := string(b)
			for _, want := range []string{
				"<title>Welcome to JIRA</title>",
				`<form method="post" action="/plugins/servlet/oauth/authorize">`,
				`<input type="hidden" name="oauth_token" value="` + tok + `">`,
				`<button name="approve" value="Allow" id="approve">Allow</button>`,
				`<button name="deny" value="Deny" id="deny">Deny</button>`,
				consumer, "allow access",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q:\n%s", want, body)
				}
			}
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			// The browser page is not an OAuth request: nothing verified,
			// nothing refused, but the token is on record.
			if rec := lastRequest(t, s); rec.Verified || rec.Problem != "" || rec.Token != tok {
				t.Errorf("record %+v", rec)
			}
		}},
		{name: "allow redirects with the verifier", callback: callback, act: func(t *testing.T, s *Server, _ *movableClock, tok string) {
			resp, _ := press(t, s, tok, "approve")
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, callback+"&") {
				t.Fatalf("%d to %q, want 302 to the callback with its query kept", resp.StatusCode, loc)
			}
			u, _ := url.Parse(loc)
			q := u.Query()
			if q.Get("state") != "a/b" || q.Get("oauth_token") != tok || q.Get("oauth_verifier") != verifierOf(t, s, tok) || q.Has("oauth_problem") {
				t.Errorf("redirect query %v", q)
			}
		}},
		{name: "deny redirects with permission_denied", callback: callback, act: func(t *testing.T, s *Server, _ *movableClock, tok string) {
			resp, _ := press(t, s, tok, "deny")
			u, err := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || err != nil {
				t.Fatalf("%d %v", resp.StatusCode, err)
			}
			q := u.Query()
			if q.Get("state") != "a/b" || q.Get("oauth_token") != tok || q.Get("oauth_problem") != ProblemPermissionDenied || q.Has("oauth_verifier") {
				t.Errorf("redirect query %v", q)
			}
		}},
		{name: "deny out of band", callback: "oob", act: func(t *testing.T, s *Server, _ *movableClock, tok string) {
			resp, body := press(t, s, tok, "deny")
			if resp.StatusCode != 200 || !strings.Contains(body, "Access Denied") || strings.Contains(body, `id="verifier"`) {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
		}},
		{name: "neither button", callback: callback, act: func(t *testing.T, s *Server, _ *movableClock, tok string) {
			if resp, body := press(t, s, tok, ""); resp.StatusCode != 400 {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
			// The question is still open.
			if _, err := s.Approve(tok); err != nil {
				t.Error(err)
			}
		}},
		{name: "second answer", callback: callback, act: func(t *testing.T, s *Server, _ *movableClock, tok string) {
			press(t, s, tok, "approve")
			first := verifierOf(t, s, tok)
			resp, body := press(t, s, tok, "deny")
			if resp.StatusCode != 200 || !strings.Contains(body, "oauth_problem=token_rejected") {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
			if verifierOf(t, s, tok) != first {
				t.Error("a second answer changed the verifier")
			}
		}},
		{name: "unknown token", callback: callback, act: func(t *testing.T, s *Server, _ *movableClock, _ string) {
			resp, body := get(t, browserClient(), s.URL()+"/plugins/servlet/oauth/authorize?oauth_token=nope")
			if resp.StatusCode != 200 || !strings.Contains(string(body), "oauth_problem=token_rejected") ||
				!strings.Contains(string(body), "<title>Welcome to JIRA</title>") || strings.Contains(string(body), `id="approve"`) {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
		}},
		{name: "expired token", callback: callback, act: func(t *testing.T, s *Server, clock *movableClock, tok string) {
			clock.advance(requestTokenLife + time.Second)
			resp, body := get(t, browserClient(), s.URL()+"/plugins/servlet/oauth/authorize?oauth_token="+url.QueryEscape(tok))
			if resp.StatusCode != 200 || !strings.Contains(string(body), "oauth_problem=token_rejected") {
				t.Errorf("GET: %d %s", resp.StatusCode, body)
			}
			if resp, body := press(t, s, tok, "approve"); resp.StatusCode != 200 || !strings.Contains(body, "oauth_problem=token_rejected") {
				t.Errorf("POST: %d %s", resp.StatusCode, body)
			}
			if _, err := s.Approve(tok); !errors.Is(err, ErrInvalidRequestToken) {
				t.Errorf("Approve: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := startDance(t)
			tok, _ := mustRequestToken(t, danceConfig(s, consumer, mine, tt.callback))
			tt.act(t, s, clock, tok)
		})
	}
}

func TestExpiredRequestTokensArePruned(t *testing.T) {
	mine, _ := keys(t)
	s, _ := startDance(t)
	tok, _ := mustRequestToken(t, danceConfig(s, consumer, mine, "oob"))
	kept := func(at time.Time) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.pruneRequestTokens(at)
		_, ok := s.tokens[tok]
		return ok
	}
	issued := time.Now()
	// Just expired: still known, so the exchange answers token_expired
	// rather than token_rejected.
	if !kept(issued.Add(requestTokenLife + time.Minute)) {
		t.Error("a request token was forgotten as soon as it expired")
	}
	if kept(issued.Add(2*requestTokenLife + time.Minute)) {
		t.Error("a request token expired for longer than its life is still kept")
	}
	if n := len(s.AccessTokens(consumer)); n != 1 {
		t.Errorf("pruning touched access tokens: %d left", n)
	}
}
