package fakejira

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// authMode is what a route demands of the caller. Jira's OAuth filter runs
// before any resource: a request that attempts OAuth is verified everywhere
// (except on the browser pages of the dance, which the filter leaves alone),
// and only the mode decides whether an unsigned one may pass.
type authMode int

const (
	// authAnonymous lets unsigned requests through, as Jira does for
	// serverInfo; a signed request must still verify.
	authAnonymous authMode = iota
	// authAccessToken needs a request signed with a consumer's access token.
	authAccessToken
	// authConsumer needs a request signed by a known consumer without a
	// token, carrying a usable oauth_callback: the request-token step.
	authConsumer
	// authRequestToken needs a request signed with an approved request
	// token and its verifier: the access-token step.
	authRequestToken
	// authBrowser is a page the user's browser opens. Its oauth_token query
	// parameter names a request token to decide on, not a signature to
	// check, so the OAuth filter must not look at it.
	authBrowser
)

// route is one endpoint. New endpoints are added to routes with their own
// mode; the request pipeline in handle does not change.
type route struct {
	methods []string
	auth    authMode
	// since and until bound the Jira major versions that offer the route
	// (until exclusive, 0 for no bound): Jira 10 replaced the webhook REST
	// API, and the other one answers 404 there as on a real server.
	since, until int
	serve        func(s *Server, x *exchange)
}

func (rt route) offeredBy(major int) bool {
	return major >= rt.since && (rt.until == 0 || major < rt.until)
}

// exchange is one request being answered.
type exchange struct {
	w   http.ResponseWriter
	r   *http.Request
	rec *Request // this request's record; fields are set under s.mu
	sr  *signedRequest
	id  string // the {id} path segment, for routes that have one
}

// routes maps paths to endpoints. A "{id}" segment matches any one path
// segment, which the handler reads from exchange.id.
var routes = map[string]route{
	"/rest/api/2/serverInfo":             {methods: []string{http.MethodGet}, auth: authAnonymous, serve: (*Server).serverInfo},
	"/rest/api/2/user":                   {methods: []string{http.MethodGet}, auth: authAccessToken, serve: (*Server).user},
	"/rest/api/2/status":                 {methods: []string{http.MethodGet}, auth: authAccessToken, serve: (*Server).statusList},
	"/rest/api/2/user/search":            {methods: []string{http.MethodGet}, auth: authAccessToken, serve: (*Server).userSearch},
	"/rest/api/2/issue/{id}":             {methods: []string{http.MethodGet}, auth: authAccessToken, serve: (*Server).issue},
	"/rest/api/2/issue/{id}/assignee":    {methods: []string{http.MethodPut}, auth: authAccessToken, serve: (*Server).assign},
	"/rest/api/2/issue/{id}/transitions": {methods: []string{http.MethodGet, http.MethodPost}, auth: authAccessToken, serve: (*Server).issueTransitions},

	// The OAuth dance. net.oauth's servlets answer GET and POST alike, so
	// a client that sends the wrong one still works against Jira; the fake
	// must not be stricter.
	oauthRequestTokenPath: {methods: []string{http.MethodGet, http.MethodPost}, auth: authConsumer, serve: (*Server).requestToken},
	oauthAuthorizePath:    {methods: []string{http.MethodGet, http.MethodPost}, auth: authBrowser, serve: (*Server).authorize},
	oauthAccessTokenPath:  {methods: []string{http.MethodGet, http.MethodPost}, auth: authRequestToken, serve: (*Server).accessToken},

	// Webhook administration: Jira before 10, then Jira 10's replacement.
	legacyWebhooksPath:           {methods: []string{http.MethodGet, http.MethodPost}, auth: authAccessToken, until: 10, serve: (*Server).legacyWebhooks},
	legacyWebhooksPath + "/{id}": {methods: []string{http.MethodGet, http.MethodDelete}, auth: authAccessToken, until: 10, serve: (*Server).legacyWebhook},
	jira10WebhooksPath:           {methods: []string{http.MethodGet, http.MethodPost}, auth: authAccessToken, since: 10, serve: (*Server).jira10Webhooks},
	jira10WebhooksPath + "/{id}": {methods: []string{http.MethodGet, http.MethodDelete}, auth: authAccessToken, since: 10, serve: (*Server).jira10Webhook},
}

// findRoute returns the route for path on this server's Jira version, and
// the {id} segment when the route has one.
func (s *Server) findRoute(path string) (route, string, bool) {
	major := s.versionNumbers[0]
	if rt, ok := routes[path]; ok && rt.offeredBy(major) {
		return rt, "", true
	}
	segs := strings.Split(path, "/")
	for i := 1; i < len(segs); i++ {
		if segs[i] == "" {
			continue
		}
		pattern := strings.Join(slices.Concat(segs[:i], []string{"{id}"}, segs[i+1:]), "/")
		if rt, ok := routes[pattern]; ok && rt.offeredBy(major) {
			return rt, segs[i], true
		}
	}
	return route{}, "", false
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

	rt, id, known := s.findRoute(r.URL.Path)
	if !known {
		rt = route{auth: authAnonymous, serve: (*Server).notFound}
	}

	sr, err := gatherSigned(r)
	if err != nil {
		s.writeError(sw, http.StatusBadRequest, err.Error())
		return
	}
	x.sr, x.id = sr, id
	checked := rt.auth != authBrowser && (sr.attempted() || rt.auth != authAnonymous)
	var prob *oauthProblem
	switch {
	case !checked:
	case sr.malformed != nil:
		prob = sr.malformed
	case rt.auth == authConsumer:
		prob = s.verifyConsumer(sr)
	case rt.auth == authRequestToken:
		prob = s.verifyExchange(sr)
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

// refuse answers an OAuth problem found by the handler after the filter
// let the request through (a race only the handler can settle), and
// corrects the record so Requests does not show it as verified.
func (s *Server) refuse(x *exchange, p *oauthProblem) {
	s.mu.Lock()
	x.rec.Verified, x.rec.Problem = false, p.problem
	s.mu.Unlock()
	writeOAuthProblem(x.w, s.url, p)
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
