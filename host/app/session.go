package app

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jirasync/jirasync/host/internal/secrets"
)

// Operators sign in with the admin token: a bearer header for API
// clients, or the login form, which sets a signed session cookie. HTTP
// Basic (the token as password) is accepted too, for curl and browsers.
// Every form POST from a cookie or Basic session carries a CSRF token, since
// browsers send both with any site's request, and must not come from
// another origin (net/http's CrossOriginProtection, on the browser's
// Sec-Fetch-Site and Origin headers). RATIONALE.md says why these are
// written here rather than taken from a session library.

const (
	sessionCookie = "jirasync_session"
	sessionTTL    = 12 * time.Hour
	// LoginPath is the sign-in page.
	LoginPath = "/extensions/jira-server/login"
	// LogoutPath signs out: GET asks, POST does it.
	LogoutPath = "/extensions/jira-server/logout"
	// MinAdminTokenBytes is the shortest admin token the host accepts.
	MinAdminTokenBytes = 16
	// sessionKeyPurpose names the session key among keys derived from
	// the secret key.
	sessionKeyPurpose = "jirasync admin sessions v1"
)

// sessionKey is the key sessions and CSRF tokens are signed with: derived
// from the secret key, which every replica sharing a database has, and
// salted with a digest of the admin token, so that a new admin token ends
// every session made with the old one. It is not the admin token itself:
// a session cookie says nothing about the token.
func sessionKey(box *secrets.Box, adminToken string) ([]byte, error) {
	digest := sha256.Sum256([]byte(adminToken))
	return box.DeriveKey(sessionKeyPurpose, digest[:])
}

func (a *App) mac(parts ...string) string {
	m := hmac.New(sha256.New, a.sessionKey)
	m.Write([]byte(strings.Join(parts, "|")))
	return hex.EncodeToString(m.Sum(nil))
}

// newSession is "expiry.nonce.mac": the nonce gives every sign-in its own
// CSRF token.
func (a *App) newSession() (string, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	exp, n := strconv.FormatInt(time.Now().Add(sessionTTL).Unix(), 10), hex.EncodeToString(nonce)
	return exp + "." + n + "." + a.mac("session", exp, n), nil
}

func (a *App) validSession(v string) bool {
	parts := strings.Split(v, ".")
	if len(parts) != 3 || !hmac.Equal([]byte(parts[2]), []byte(a.mac("session", parts[0], parts[1]))) {
		return false
	}
	n, err := strconv.ParseInt(parts[0], 10, 64)
	return err == nil && time.Now().Unix() < n
}

// authKind says how a request authenticated: "bearer", "session",
// "basic", or "" for not at all.
func (a *App) authKind(r *http.Request) (kind, session string) {
	tokenOK := func(t string) bool { return sameToken(t, a.cfg.AdminToken) }
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if tokenOK(v) {
			return "bearer", ""
		}
		return "", ""
	}
	if c, err := r.Cookie(sessionCookie); err == nil && a.validSession(c.Value) {
		return "session", c.Value
	}
	if _, pw, ok := r.BasicAuth(); ok && tokenOK(pw) {
		return "basic", ""
	}
	return "", ""
}

// csrfFor is the CSRF token of a session ("" for Basic).
func (a *App) csrfFor(session string) string { return a.mac("csrf", session) }

// CSRF returns the token forms on a page must carry.
func (a *App) CSRF(r *http.Request) string {
	_, s := a.authKind(r)
	return a.csrfFor(s)
}

// admin guards an operator endpoint: signed in, and for a form POST from a
// browser, from this host's pages (same origin, and the right CSRF token).
// A client whose sign-ins keep failing is refused for a while, whatever
// credentials it sends next.
func (a *App) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.throttled(w, r) {
			return
		}
		kind, session := a.authKind(r)
		if kind == "" {
			a.credentialsRefused(r)
			if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
				http.Redirect(w, r, LoginPath+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="jirasync admin", charset="UTF-8"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "admin token required"})
			return
		}
		if kind != "bearer" {
			if err := a.crossOrigin.Check(r); err != nil {
				writeJSON(w, http.StatusForbidden, errorBody{Error: "cross-origin request refused: " + err.Error()})
				return
			}
			if r.Method == http.MethodPost && !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(a.csrfFor(session))) {
				writeJSON(w, http.StatusForbidden, errorBody{Error: "missing or wrong CSRF token"})
				return
			}
		}
		h(w, r)
	}
}

// throttled answers 429 to a client whose sign-ins failed too often and
// reports whether it did. Every guard of the admin token calls it first.
func (a *App) throttled(w http.ResponseWriter, r *http.Request) bool {
	wait := a.signins.blocked(clientOf(r))
	if wait <= 0 {
		return false
	}
	tooMany(w, wait)
	writeJSON(w, http.StatusTooManyRequests, errorBody{Error: "too many failed sign-ins from this address; try again later"})
	return true
}

// credentialsRefused counts a request that authenticated with nothing:
// a failure when it did present credentials (a bearer or Basic header).
func (a *App) credentialsRefused(r *http.Request) {
	if _, _, basic := r.BasicAuth(); basic || r.Header.Get("Authorization") != "" {
		a.signins.fail(clientOf(r))
		a.log.Warn("admin token refused", "remote", r.RemoteAddr, "path", r.URL.Path)
	}
}

// tooMany sets Retry-After, in whole seconds, rounded up.
func tooMany(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
}

type loginPage struct {
	Next, Error, Notice string
}

type logoutPage struct {
	CSRF  string
	Basic bool // signed in with HTTP Basic, which only the browser can forget
}

func (a *App) loginRoutes() {
	a.mux.HandleFunc("GET "+LoginPath, func(w http.ResponseWriter, r *http.Request) {
		p := loginPage{Next: safeNext(r.URL.Query().Get("next"))}
		if r.URL.Query().Get("signed_out") != "" {
			p.Notice = "You are signed out."
		}
		render(w, http.StatusOK, "login.html", p)
	})
	a.mux.HandleFunc("POST "+LoginPath, func(w http.ResponseWriter, r *http.Request) {
		next := safeNext(r.PostFormValue("next"))
		client := clientOf(r)
		if wait := a.signins.blocked(client); wait > 0 {
			a.log.Warn("sign-in throttled", "remote", r.RemoteAddr, "retry_after", wait.Round(time.Second))
			tooMany(w, wait)
			render(w, http.StatusTooManyRequests, "login.html", loginPage{Next: next,
				Error: fmt.Sprintf("Too many failed sign-ins from your address. Try again in %d minutes.", int(math.Ceil(wait.Minutes())))})
			return
		}
		if err := a.crossOrigin.Check(r); err != nil {
			render(w, http.StatusForbidden, "login.html", loginPage{Next: next, Error: "Sign in from this host's own sign-in page."})
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.PostFormValue("token")), []byte(a.cfg.AdminToken)) != 1 {
			a.signins.fail(client)
			a.log.Warn("sign-in refused", "remote", r.RemoteAddr)
			render(w, http.StatusUnauthorized, "login.html", loginPage{Next: next, Error: "That is not the admin token."})
			return
		}
		a.signins.forget(client)
		session, err := a.newSession()
		if err != nil {
			http.Error(w, "making a session: "+err.Error(), http.StatusInternalServerError)
			return
		}
		http.SetCookie(w, a.sessionCookie(r, session, int(sessionTTL.Seconds())))
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
	a.mux.HandleFunc("GET "+LogoutPath, a.admin(func(w http.ResponseWriter, r *http.Request) {
		kind, session := a.authKind(r)
		render(w, http.StatusOK, "logout.html", logoutPage{CSRF: a.csrfFor(session), Basic: kind == "basic"})
	}))
	a.mux.HandleFunc("POST "+LogoutPath, a.admin(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, a.sessionCookie(r, "", -1))
		http.Redirect(w, r, LoginPath+"?signed_out=1", http.StatusSeeOther)
	}))
}

// sessionCookie is the cookie carrying value; maxAge < 0 deletes it. It
// is Secure when the browser reaches the host over https, which behind a
// TLS-terminating proxy only the public URL tells.
func (a *App) sessionCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	secure := r.TLS != nil || strings.HasPrefix(strings.ToLower(a.cfg.PublicURL), "https://")
	return &http.Cookie{Name: sessionCookie, Value: value, Path: "/extensions/jira-server/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure, MaxAge: maxAge}
}

// Where a sign-in may send the browser on: the host's own pages, and its
// API. Anything else goes to the setup page.
var nextPrefixes = []string{"/extensions/jira-server/", "/api/"}

// safeNext keeps a post-login redirect on this host. It parses next and
// allow-lists what it may be (a path under nextPrefixes, after cleaning,
// with a query), instead of denying known tricks: browsers drop tabs and
// newlines from URLs and read "\" as "/", so "/\t/evil.example" reaches
// another site though it starts with one slash.
func safeNext(next string) string {
	unescaped, err := url.PathUnescape(next)
	if err != nil || hasControl(next) || hasControl(unescaped) || strings.Contains(unescaped, "\\") {
		return SetupPath
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(next, "/") {
		return SetupPath
	}
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return SetupPath
	}
	clean := path.Clean(u.Path)
	if strings.HasSuffix(u.Path, "/") && clean != "/" {
		clean += "/"
	}
	for _, prefix := range nextPrefixes {
		if strings.HasPrefix(clean, prefix) {
			return (&url.URL{Path: clean, RawQuery: query.Encode()}).RequestURI()
		}
	}
	return SetupPath
}

// hasControl: any C0 control character or DEL.
func hasControl(s string) bool {
	return strings.IndexFunc(s, func(c rune) bool { return c < 0x20 || c == 0x7f }) >= 0
}
