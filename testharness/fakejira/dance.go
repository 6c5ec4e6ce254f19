package fakejira

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// This file is the OAuth 1.0a dance (RFC 5849 §2) as Jira Server's
// application links run it: request token, the user's decision on Jira's
// authorize page, access token. The access token it issues is the same
// kind of record AddAccessToken makes, so REST calls cannot tell them apart.

const (
	oauthRequestTokenPath = "/plugins/servlet/oauth/request-token"
	oauthAuthorizePath    = "/plugins/servlet/oauth/authorize"
	oauthAccessTokenPath  = "/plugins/servlet/oauth/access-token"

	// requestTokenLife is how long Jira keeps a request token: the user has
	// ten minutes to decide and the consumer to exchange it.
	requestTokenLife = 10 * time.Minute
	// accessTokenLife is what Jira announces in oauth_expires_in and
	// oauth_authorization_expires_in: five years, in seconds.
	accessTokenLife = "157680000"

	// adminKey and adminName are the user the fake's browser is logged in
	// as: who approves on the authorize page and who owns the webhooks the
	// product registers. Jira would refuse the dance to anonymous users; the
	// fake has no login page, so there is always someone logged in.
	adminKey  = "admin"
	adminName = "Administrator"
)

// ErrInvalidRequestToken is returned by Approve for a token that is unknown,
// expired, already decided on or already exchanged: one the authorize page
// would call invalid.
var ErrInvalidRequestToken = errors.New("fakejira: request token is unknown, expired or already used")

// verifyConsumer checks the request-token step: a known consumer, no token,
// and a callback Jira would redirect to.
func (s *Server) verifyConsumer(sr *signedRequest) *oauthProblem {
	return s.verifySigned(sr, requiredForRequestToken, func(string, time.Time) *oauthProblem {
		if !validCallback(sr.protocol["oauth_callback"]) {
			return problem(ProblemParameterRejected, param{"oauth_parameters_rejected", "oauth_callback"})
		}
		return nil
	})
}

// validCallback accepts "oob" (RFC 5849 §2.1's out-of-band value) and
// absolute http(s) URLs. Other schemes are refused rather than redirected
// to: the redirect is the user's browser following the consumer's word.
func validCallback(cb string) bool {
	if cb == "oob" {
		return true
	}
	u, err := url.Parse(cb)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// verifyExchange checks the access-token step. The order of the token checks
// is Atlassian's AccessTokenServlet's: whose token it is, its state, the
// user's decision, the verifier. Whether it was exchanged before is checked
// here for the answer and again, atomically, by the handler.
func (s *Server) verifyExchange(sr *signedRequest) *oauthProblem {
	return s.verifySigned(sr, requiredForExchange, func(consumer string, now time.Time) *oauthProblem {
		s.mu.Lock()
		rec, known := s.tokens[sr.protocol["oauth_token"]]
		s.mu.Unlock()
		switch {
		case !known || rec.consumer != consumer || rec.kind != requestToken:
			return problem(ProblemTokenRejected)
		case rec.exchanged:
			return problem(ProblemTokenUsed)
		case now.After(rec.expires):
			return problem(ProblemTokenExpired)
		case rec.decision == denied:
			return problem(ProblemPermissionDenied)
		case rec.decision != approved:
			return problem(ProblemPermissionUnknown)
		case subtle.ConstantTimeCompare([]byte(sr.protocol["oauth_verifier"]), []byte(rec.verifier)) != 1:
			return problem(ProblemTokenRejected)
		}
		return nil
	})
}

// newSecret is a fresh unguessable token, verifier or session handle.
func newSecret() string { return rand.Text() }

// requestToken issues temporary credentials (§2.1).
func (s *Server) requestToken(x *exchange) {
	tok, secret := newSecret(), newSecret()
	now := s.now()
	s.mu.Lock()
	s.pruneRequestTokens(now)
	s.tokens[tok] = tokenRecord{
		consumer: x.sr.protocol["oauth_consumer_key"],
		secret:   secret,
		kind:     requestToken,
		callback: x.sr.protocol["oauth_callback"],
		expires:  now.Add(requestTokenLife),
	}
	s.mu.Unlock()
	writeForm(x.w, []param{{"oauth_token", tok}, {"oauth_token_secret", secret}, {"oauth_callback_confirmed", "true"}})
}

// pruneRequestTokens forgets request tokens a further requestTokenLife after
// they expired, so a client looping on request-token cannot grow the map
// forever, while a test that lets one expire still sees token_expired
// rather than token_rejected. Callers hold s.mu.
func (s *Server) pruneRequestTokens(now time.Time) {
	for k, rec := range s.tokens {
		if rec.kind == requestToken && now.After(rec.expires.Add(requestTokenLife)) {
			delete(s.tokens, k)
		}
	}
}

// accessToken trades an approved request token for token credentials (§2.3).
func (s *Server) accessToken(x *exchange) {
	reqTok := x.sr.protocol["oauth_token"]
	tok, secret, session := newSecret(), newSecret(), newSecret()
	s.mu.Lock()
	rec := s.tokens[reqTok]
	if rec.exchanged {
		// Two exchanges of one token raced through the filter; the first
		// to get here wins.
		s.mu.Unlock()
		s.refuse(x, problem(ProblemTokenUsed))
		return
	}
	rec.exchanged = true
	s.tokens[reqTok] = rec
	s.tokens[tok] = tokenRecord{consumer: rec.consumer, secret: secret, kind: accessToken, session: session}
	s.mu.Unlock()
	s.log.Info("oauth access token issued", "consumer_key", rec.consumer)
	writeForm(x.w, []param{
		{"oauth_token", tok},
		{"oauth_token_secret", secret},
		{"oauth_expires_in", accessTokenLife},
		{"oauth_session_handle", session},
		{"oauth_authorization_expires_in", accessTokenLife},
	})
}

// writeForm answers a dance step the way net.oauth's servlets do: a
// form-encoded body labelled text/plain.
func writeForm(w http.ResponseWriter, params []param) {
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(percentEncode(p.name) + "=" + percentEncode(p.value))
	}
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, b.String())
}

// Approve approves a request token as if the logged-in user had pressed
// Allow on the authorize page, for tests that do not drive a browser. It
// returns the oauth_verifier the consumer's callback would have received.
func (s *Server) Approve(requestToken string) (verifier string, err error) {
	rec, err := s.decide(requestToken, true)
	if err != nil {
		return "", err
	}
	return rec.verifier, nil
}

// decide records the user's answer for a request token still awaiting one.
func (s *Server) decide(tok string, allow bool) (tokenRecord, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.tokens[tok]
	if !ok || !rec.awaitingDecision(now) {
		return tokenRecord{}, ErrInvalidRequestToken
	}
	rec.decision = denied
	if allow {
		rec.decision, rec.verifier = approved, newSecret()
	}
	s.tokens[tok] = rec
	return rec, nil
}

// awaitingDecision reports whether the authorize page may still offer the
// token to the user. A decided token is not offered again: Jira's page is
// a one-shot form, and a second answer must not replace the verifier the
// consumer may already hold.
func (rec tokenRecord) awaitingDecision(now time.Time) bool {
	return rec.kind == requestToken && !rec.exchanged && rec.decision == undecided && !now.After(rec.expires)
}

// AccessTokens lists the access tokens of a consumer, whether added with
// AddAccessToken or issued by the dance, sorted.
func (s *Server) AccessTokens(consumerKey string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for tok, rec := range s.tokens {
		if rec.kind == accessToken && rec.consumer == consumerKey {
			out = append(out, tok)
		}
	}
	slices.Sort(out)
	return out
}

// authorizePage is what the user sees on Jira's authorize servlet, reduced
// to what a person or a browser-driving test needs: Jira's title, who asks,
// the two buttons with the names and ids Jira gives them.
var authorizePage = template.Must(template.New("authorize").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Welcome to JIRA</title>
</head>
<body>
<header><p>Logged in as {{.User}} (simulated Jira {{.Version}})</p></header>
<main>
{{- if eq .Kind "ask"}}
<h1>Request for access</h1>
<p><strong id="consumer">{{.Consumer}}</strong> is requesting access to your JIRA account.
Do you want to allow access to your data for {{.Consumer}}?</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="oauth_token" value="{{.Token}}">
<button name="approve" value="Allow" id="approve">Allow</button>
<button name="deny" value="Deny" id="deny">Deny</button>
</form>
{{- else if eq .Kind "invalid"}}
<h1>Invalid OAuth request</h1>
<p>The request token is invalid: it is unknown, has expired, or has already been used.</p>
<p id="oauth-problem">oauth_problem=token_rejected</p>
{{- else if eq .Kind "approved"}}
<h1>Access Approved</h1>
<p>You have authorized {{.Consumer}}. Enter this verification code in {{.Consumer}} to finish:</p>
<p><code id="verifier">{{.Verifier}}</code></p>
{{- else if eq .Kind "denied"}}
<h1>Access Denied</h1>
<p>You have denied {{.Consumer}} access to your data.</p>
{{- else}}
<h1>Choose Allow or Deny</h1>
<p>The form did not say whether to allow access.</p>
{{- end}}
</main>
</body>
</html>
`))

type authorizeView struct {
	Kind             string // ask, invalid, approved, denied, undecided
	User, Version    string
	Consumer, Token  string
	Action, Verifier string
}

// authorize is the user's side of §2.2: GET shows the question, POST takes
// the answer and sends the browser back to the consumer.
func (s *Server) authorize(x *exchange) {
	tok := x.r.URL.Query().Get("oauth_token")
	if x.r.Method == http.MethodPost {
		if err := x.r.ParseForm(); err != nil {
			s.writeError(x.w, http.StatusBadRequest, err.Error())
			return
		}
		s.authorizeAnswer(x, x.r.Form.Get("oauth_token"))
		return
	}
	now := s.now()
	s.mu.Lock()
	rec, ok := s.tokens[tok]
	s.mu.Unlock()
	if !ok || !rec.awaitingDecision(now) {
		// Jira shows its error page with 200, not an HTTP error.
		s.renderAuthorize(x.w, http.StatusOK, authorizeView{Kind: "invalid"})
		return
	}
	s.renderAuthorize(x.w, http.StatusOK, authorizeView{Kind: "ask", Consumer: rec.consumer, Token: tok, Action: oauthAuthorizePath})
}

func (s *Server) authorizeAnswer(x *exchange, tok string) {
	form := x.r.Form
	var allow bool
	switch {
	case form.Has("deny"):
		// Deny wins if a hand-made form sends both: refusing is the safe
		// reading.
	case form.Has("approve"):
		allow = true
	default:
		s.renderAuthorize(x.w, http.StatusBadRequest, authorizeView{Kind: "undecided"})
		return
	}
	rec, err := s.decide(tok, allow)
	if err != nil {
		s.renderAuthorize(x.w, http.StatusOK, authorizeView{Kind: "invalid"})
		return
	}
	s.log.Info("oauth request token decided", "consumer_key", rec.consumer, "allowed", allow)
	if rec.callback == "oob" {
		kind := "denied"
		if allow {
			kind = "approved"
		}
		s.renderAuthorize(x.w, http.StatusOK, authorizeView{Kind: kind, Consumer: rec.consumer, Verifier: rec.verifier})
		return
	}
	back := url.Values{"oauth_token": {tok}}
	if allow {
		back.Set("oauth_verifier", rec.verifier)
	} else {
		// Real Jira shows "Access Denied" and stays; the product expects to
		// be sent back with the problem, which is what the fake does.
		back.Set("oauth_problem", ProblemPermissionDenied)
	}
	http.Redirect(x.w, x.r, appendQuery(rec.callback, back), http.StatusFound)
}

// appendQuery adds v to the query of callback, keeping what is there byte
// for byte: the consumer may have put its own state in the callback and
// will compare it exactly.
func appendQuery(callback string, v url.Values) string {
	u, err := url.Parse(callback)
	if err != nil {
		// validCallback parsed it when the token was issued.
		panic(err)
	}
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += v.Encode()
	return u.String()
}

func (s *Server) renderAuthorize(w http.ResponseWriter, status int, v authorizeView) {
	v.User, v.Version = adminKey, s.version
	// Jira forbids framing its OAuth pages (clickjacking an Allow) and
	// caching them (the form carries a live token).
	w.Header().Set("Content-Type", "text/html;charset=UTF-8")
	w.Header().Set("X-Frame-Options", "SAMEORIGIN")
	w.Header().Set("Cache-Control", "no-cache, no-store")
	w.WriteHeader(status)
	if err := authorizePage.Execute(w, v); err != nil {
		s.log.Error("rendering the authorize page", "error", err)
	}
}
