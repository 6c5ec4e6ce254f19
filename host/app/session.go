package app

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// Operators sign in with the admin token: a bearer header for API
// clients, or the login form, which sets a signed session cookie. HTTP
// Basic (the token as password) is accepted too, for curl and browsers.
// Every form POST from a cookie or Basic session carries a CSRF token, since
// browsers send both with any site's request.

const (
	sessionCookie = "jirasync_session"
	sessionTTL    = 12 * time.Hour
	// LoginPath is the sign-in page.
	LoginPath = "/extensions/jira-server/login"
)

func (a *App) mac(parts ...string) string {
	m := hmac.New(sha256.New, []byte(a.cfg.AdminToken))
	m.Write([]byte(strings.Join(parts, "|")))
	return hex.EncodeToString(m.Sum(nil))
}

func (a *App) newSession() string {
	exp := strconv.FormatInt(time.Now().Add(sessionTTL).Unix(), 10)
	return exp + "." + a.mac("session", exp)
}

func (a *App) validSession(v string) bool {
	exp, sig, ok := strings.Cut(v, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(a.mac("session", exp))) {
		return false
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	return err == nil && time.Now().Unix() < n
}

// authKind says how a request authenticated: "bearer", "session",
// "basic", or "" for not at all.
func (a *App) authKind(r *http.Request) (kind, session string) {
	tokenOK := func(t string) bool {
		return t != "" && subtle.ConstantTimeCompare([]byte(t), []byte(a.cfg.AdminToken)) == 1
	}
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
// browser, the right CSRF token.
func (a *App) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		kind, session := a.authKind(r)
		if kind == "" {
			if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
				http.Redirect(w, r, LoginPath+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="jirasync admin", charset="UTF-8"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "admin token required"})
			return
		}
		if r.Method == http.MethodPost && kind != "bearer" &&
			!hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(a.csrfFor(session))) {
			writeJSON(w, http.StatusForbidden, errorBody{Error: "missing or wrong CSRF token"})
			return
		}
		h(w, r)
	}
}

type loginPage struct {
	Next, Error string
}

func (a *App) loginRoutes() {
	a.mux.HandleFunc("GET "+LoginPath, func(w http.ResponseWriter, r *http.Request) {
		render(w, http.StatusOK, "login.html", loginPage{Next: safeNext(r.URL.Query().Get("next"))})
	})
	a.mux.HandleFunc("POST "+LoginPath, func(w http.ResponseWriter, r *http.Request) {
		next := safeNext(r.PostFormValue("next"))
		if subtle.ConstantTimeCompare([]byte(r.PostFormValue("token")), []byte(a.cfg.AdminToken)) != 1 {
			a.log.Warn("sign-in refused", "remote", r.RemoteAddr)
			render(w, http.StatusUnauthorized, "login.html", loginPage{Next: next, Error: "That is not the admin token."})
			return
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: a.newSession(), Path: "/extensions/jira-server/",
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, MaxAge: int(sessionTTL.Seconds())})
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
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
