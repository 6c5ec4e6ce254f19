package fakejira

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// authMode is what a route demands of the caller. Jira's OAuth filter runs
// before any resource: a request that attempts OAuth is verified everywhere,
// and only the mode decides whether an unsigned one may pass.
type authMode int

const (
	// authAnonymous lets unsigned requests through, as Jira does for
	// serverInfo; a signed request must still verify.
	authAnonymous authMode = iota
	// authAccessToken needs a request signed with a consumer's access token.
	authAccessToken
)

// route is one endpoint. New endpoints (the OAuth dance under
// /plugins/servlet/oauth/, webhook registration under /rest/webhooks/) are
// added to routes with their own mode; the request pipeline in handle does
// not change.
type route struct {
	methods []string
	auth    authMode
	serve   func(s *Server, x *exchange)
}

// exchange is one request being answered.
type exchange struct {
	w   http.ResponseWriter
	r   *http.Request
	rec *Request // this request's record; fields are set under s.mu
}

var routes = map[string]route{
	"/rest/api/2/serverInfo": {methods: []string{http.MethodGet}, auth: authAnonymous, serve: (*Server).serverInfo},
	"/rest/api/2/user":       {methods: []string{http.MethodGet}, auth: authAccessToken, serve: (*Server).user},
}

// handle is the whole request pipeline: record, authenticate, inject
// failures, route.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, At: s.now()}
	s.mu.Lock()
	// Recorded on arrival, not on completion, so Requests keeps arrival
	// order even when answers overlap.
	s.requests = append(s.requests, rec)
	s.mu.Unlock()

	sw := &statusWriter{ResponseWriter: w}
	x := &exchange{w: sw, r: r, rec: rec}
	defer func() {
		s.mu.Lock()
		rec.Status = sw.status()
		done := *rec
		s.mu.Unlock()
		attrs := []any{"method", done.Method, "path", done.Path, "status", done.Status,
			"verified", done.Verified, "duration", time.Since(start)}
		if done.ConsumerKey != "" {
			attrs = append(attrs, "consumer_key", done.ConsumerKey)
		}
		if done.Problem != "" {
			attrs = append(attrs, "oauth_problem", done.Problem)
		}
		s.log.Info("jira request", attrs...)
	}()

	rt, known := routes[r.URL.Path]
	if !known {
		rt = route{auth: authAnonymous, serve: (*Server).notFound}
	}

	sr, err := gatherSigned(r)
	if err != nil {
		s.writeError(sw, http.StatusBadRequest, err.Error())
		return
	}
	checked := sr.attempted() || rt.auth == authAccessToken
	var prob *oauthProblem
	switch {
	case !checked:
	case sr.malformed != nil:
		prob = sr.malformed
	default:
		prob = s.verifyAccess(sr)
	}
	s.mu.Lock()
	rec.ConsumerKey, rec.Token = sr.protocol["oauth_consumer_key"], sr.protocol["oauth_token"]
	rec.Verified = checked && prob == nil
	if prob != nil {
		rec.Problem = prob.problem
	}
	failure := s.failure
	s.mu.Unlock()

	if failure != 0 && strings.HasPrefix(r.URL.Path, "/rest/") {
		s.writeFailure(sw, failure)
		return
	}
	if prob != nil {
		writeOAuthProblem(sw, s.url, prob)
		return
	}
	if rt.methods != nil && !contains(rt.methods, r.Method) {
		// Jersey answers a known resource with an unsupported method with
		// 405 and an Allow header.
		sw.Header().Set("Allow", strings.Join(rt.methods, ","))
		s.writeError(sw, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	rt.serve(s, x)
}

func contains(list []string, v string) bool {
	for _, e := range list {
		if e == v {
			return true
		}
	}
	return false
}

// errorBody is Jira's ErrorCollection, the body of nearly every REST error.
type errorBody struct {
	ErrorMessages []string          `json:"errorMessages"`
	Errors        map[string]string `json:"errors"`
}

func (s *Server) writeError(w http.ResponseWriter, status int, messages ...string) {
	writeJSON(w, status, errorBody{ErrorMessages: messages, Errors: map[string]string{}})
}

// writeFailure answers an injected failure. Retry-After accompanies the
// statuses where a real Jira or its proxy would send it, so clients'
// back-off paths are exercised too.
func (s *Server) writeFailure(w http.ResponseWriter, status int) {
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "30")
	}
	msg := http.StatusText(status)
	if msg == "" {
		msg = "Error"
	}
	s.writeError(w, status, msg)
}

// notFound is Jersey's answer for a path no resource matches.
func (s *Server) notFound(x *exchange) {
	s.writeError(x.w, http.StatusNotFound, "null for uri: "+s.url+x.r.URL.RequestURI())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only the fake's own types are marshalled; failing here is a bug.
		panic(err)
	}
	// Jira writes the charset without a space; some clients compare it.
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	w.Write(b)
}

// statusWriter remembers the status for the request record.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		// A handler that wrote nothing gets an empty 200 from net/http.
		return http.StatusOK
	}
	return w.code
}
