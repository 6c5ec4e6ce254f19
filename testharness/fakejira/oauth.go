package fakejira

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // OAuth 1.0a RSA-SHA1 is what Jira Server speaks; the fake must verify exactly that
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file is the server side of OAuth 1.0a (RFC 5849) as Jira Server and
// Data Center implement it: RSA-SHA1 only, five minutes of clock skew, and
// failures reported the way net.oauth (the library under Atlassian's OAuth
// plugin) reports them. It is deliberately written from the RFC rather than
// borrowed from a client library, so that a bug shared by the product's
// client and its test double cannot cancel itself out.

// OAuth problem names (RFC 5849 has none; these are the de facto set from the
// OAuth Problem Reporting extension that net.oauth, and so Jira, uses).
const (
	ProblemParameterAbsent         = "parameter_absent"
	ProblemParameterRejected       = "parameter_rejected"
	ProblemVersionRejected         = "version_rejected"
	ProblemSignatureMethodRejected = "signature_method_rejected"
	ProblemConsumerKeyUnknown      = "consumer_key_unknown"
	ProblemTokenRejected           = "token_rejected"
	ProblemTimestampRefused        = "timestamp_refused"
	ProblemNonceUsed               = "nonce_used"
	ProblemSignatureInvalid        = "signature_invalid"
	// The dance's own problems: a request token that is past its life,
	// already exchanged, refused by the user, or not yet decided on.
	ProblemTokenExpired      = "token_expired"
	ProblemTokenUsed         = "token_used"
	ProblemPermissionDenied  = "permission_denied"
	ProblemPermissionUnknown = "permission_unknown"
)

const (
	// timestampWindow is net.oauth's default, which Jira keeps: a signed
	// request is good for five minutes either side of the server's clock.
	timestampWindow = 5 * time.Minute
	// maxNonces bounds the replay cache. Far more than any test sends within
	// one window, small enough that a runaway client cannot grow it forever.
	maxNonces = 100_000
	// maxFormBody bounds how much of a form-encoded body is read for the
	// signature; Jira's REST API never needs more.
	maxFormBody = 1 << 20
)

// param is one name/value pair. Order and repetition matter to the base
// string, so parameters are never kept in a map until normalized.
type param struct{ name, value string }

// oauthProblem is a refused OAuth check, with the extra oauth_* parameters
// net.oauth attaches to help the client (acceptable timestamps, the base
// string it computed, ...). Jira sends them in both the WWW-Authenticate
// header and the form-encoded body.
type oauthProblem struct {
	problem string
	extra   []param
}

func (p *oauthProblem) Error() string { return "oauth_problem=" + p.problem }

func problem(name string, extra ...param) *oauthProblem {
	return &oauthProblem{problem: name, extra: extra}
}

// signedRequest is what the signature covers, gathered from one request.
type signedRequest struct {
	method  string
	baseURI string
	// params are all parameters that enter the base string: protocol
	// parameters (without realm and oauth_signature), the query and a
	// form-encoded body, in arrival order.
	params []param
	// protocol holds the oauth_* parameters from wherever they came, one
	// value each (a repeated protocol parameter is refused while gathering).
	protocol map[string]string
	// headerSeen is true when an Authorization header used the OAuth scheme,
	// even an empty one: that is an attempt at OAuth, not an anonymous call.
	headerSeen bool
	// malformed is set when the request cannot be read as OAuth at all
	// (repeated protocol parameter, bad encoding). It only matters if
	// OAuth was attempted or the route needs it: a bad query on an
	// anonymous call is none of the OAuth filter's business.
	malformed *oauthProblem
}

// attempted reports whether the client tried OAuth at all. Jira lets an
// unsigned request through as anonymous, but one that tries and fails is
// refused even where anonymous access would have been allowed.
func (sr *signedRequest) attempted() bool {
	return sr.headerSeen || len(sr.protocol) > 0
}

// gatherSigned reads the parts of r that the signature covers. It consumes a
// form-encoded body and puts an identical one back, so handlers can still
// read it. An error is an I/O or size failure of the request itself; OAuth
// trouble is reported in malformed.
func gatherSigned(r *http.Request) (*signedRequest, error) {
	sr := &signedRequest{
		method:   strings.ToUpper(r.Method),
		baseURI:  baseStringURI(r),
		protocol: map[string]string{},
	}
	var protocolSeen []string
	addProtocol := func(p param) bool {
		if _, dup := sr.protocol[p.name]; dup {
			// RFC 5849 §3.5: protocol parameters must not repeat, whether in
			// one place or spread over header, query and body.
			sr.malformed = problem(ProblemParameterRejected, param{"oauth_parameters_rejected", p.name})
			return false
		}
		sr.protocol[p.name] = p.value
		protocolSeen = append(protocolSeen, p.name)
		return true
	}
	rejected := func(what string) (*signedRequest, error) {
		sr.malformed = problem(ProblemParameterRejected, param{"oauth_parameters_rejected", what})
		return sr, nil
	}

	for _, h := range r.Header.Values("Authorization") {
		hp, isOAuth, err := parseAuthorization(h)
		if !isOAuth {
			continue
		}
		sr.headerSeen = true
		if err != nil {
			return rejected("Authorization")
		}
		for _, p := range hp {
			// §3.4.1.3.1: every header parameter but realm is signed.
			if p.name != "realm" && !addProtocol(p) {
				return sr, nil
			}
		}
		break
	}

	query, err := parseForm(r.URL.RawQuery)
	if err != nil {
		return rejected("query")
	}
	var body []param
	if isForm(r.Header.Get("Content-Type")) && r.Body != nil {
		raw, err := io.ReadAll(io.LimitReader(r.Body, maxFormBody+1))
		r.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading form body: %w", err)
		}
		if len(raw) > maxFormBody {
			return nil, fmt.Errorf("form body larger than %d bytes", maxFormBody)
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		if body, err = parseForm(string(raw)); err != nil {
			return rejected("body")
		}
	}
	// §3.5.2 and §3.5.3 allow protocol parameters in the query or the body
	// too; net.oauth reads all three, so the fake does as well.
	for _, p := range append(append([]param(nil), query...), body...) {
		if strings.HasPrefix(p.name, "oauth_") && !addProtocol(p) {
			return sr, nil
		}
	}

	for _, name := range protocolSeen {
		if name == "oauth_signature" {
			continue
		}
		sr.params = append(sr.params, param{name, sr.protocol[name]})
	}
	for _, p := range append(append([]param(nil), query...), body...) {
		// Protocol parameters were added once above, wherever they came from.
		if !strings.HasPrefix(p.name, "oauth_") {
			sr.params = append(sr.params, p)
		}
	}
	return sr, nil
}

// isForm reports whether a Content-Type is application/x-www-form-urlencoded,
// the only body whose parameters a signature covers (§3.4.1.3.1).
func isForm(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// parseForm splits application/x-www-form-urlencoded text into pairs,
// keeping order and repeats. url.ParseQuery is not used: it returns a map
// and refuses ';', and the signature needs neither behaviour.
func parseForm(s string) ([]param, error) {
	var out []param
	for _, pair := range strings.Split(s, "&") {
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		n, err := url.QueryUnescape(name)
		if err != nil {
			return nil, err
		}
		v, err := url.QueryUnescape(value)
		if err != nil {
			return nil, err
		}
		out = append(out, param{n, v})
	}
	return out, nil
}

// parseAuthorization reads an `Authorization: OAuth k="v", ...` header
// (§3.5.1). isOAuth is false for any other scheme, which is then no concern
// of the OAuth check. Values are percent-decoded without turning '+' into a
// space: the header uses §3.6 encoding, not form encoding.
func parseAuthorization(h string) (params []param, isOAuth bool, err error) {
	h = strings.TrimSpace(h)
	scheme, rest := h, ""
	if i := strings.IndexAny(h, " \t"); i >= 0 {
		scheme, rest = h[:i], h[i+1:]
	}
	if !strings.EqualFold(scheme, "OAuth") {
		return nil, false, nil
	}
	for {
		rest = strings.TrimLeft(rest, " \t\r\n,")
		if rest == "" {
			return params, true, nil
		}
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			return nil, true, errors.New("parameter without value")
		}
		rawName := strings.TrimSpace(rest[:eq])
		rest = strings.TrimLeft(rest[eq+1:], " \t\r\n")
		var rawValue string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, true, errors.New("unterminated quoted value")
			}
			rawValue, rest = rest[1:1+end], rest[2+end:]
		} else {
			// Unquoted values are not in the RFC but some clients send them;
			// net.oauth accepts them, so reject nothing it would take.
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			rawValue, rest = strings.TrimSpace(rest[:end]), rest[end:]
		}
		name, err := url.PathUnescape(rawName)
		if err != nil {
			return nil, true, err
		}
		value, err := url.PathUnescape(rawValue)
		if err != nil {
			return nil, true, err
		}
		params = append(params, param{name, value})
	}
}

// baseStringURI is §3.4.1.2: scheme and host lowercased, the default port
// of the scheme dropped, the path as the client sent it, no query. The host
// comes from the Host header because that is the URL the client signed;
// Jira behind a proxy that rewrites Host fails with signature_invalid for
// exactly this reason.
func baseStringURI(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := strings.ToLower(r.Host)
	if h, port, err := net.SplitHostPort(host); err == nil {
		if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
			host = h
			if strings.Contains(h, ":") {
				host = "[" + h + "]"
			}
		}
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}

// baseString is §3.4.1.1: METHOD&enc(base URI)&enc(normalized parameters).
func (sr *signedRequest) baseString() string {
	return sr.method + "&" + percentEncode(sr.baseURI) + "&" + percentEncode(normalizeParams(sr.params))
}

// normalizeParams is §3.4.1.3.2: encode every name and value, sort by
// encoded name then encoded value (byte order), join.
func normalizeParams(params []param) string {
	enc := make([]param, len(params))
	for i, p := range params {
		enc[i] = param{percentEncode(p.name), percentEncode(p.value)}
	}
	sort.Slice(enc, func(i, j int) bool {
		if enc[i].name != enc[j].name {
			return enc[i].name < enc[j].name
		}
		return enc[i].value < enc[j].value
	})
	var b strings.Builder
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.name)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

// percentEncode is §3.6: UTF-8 bytes, everything but ALPHA, DIGIT, '-', '.',
// '_' and '~' as %XX with uppercase hex. It differs from url.QueryEscape
// (space as '+', '~' escaped in old Go) and url.PathEscape (keeps '/', ':',
// '@', ...), which is why neither is used.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0x0f])
	}
	return b.String()
}

// The protocol parameters each kind of signed request must carry.
// oauth_version is optional everywhere (§3.1).
var (
	// requiredForAccess: a request signed with an access token.
	requiredForAccess = []string{
		"oauth_consumer_key", "oauth_token", "oauth_signature_method",
		"oauth_signature", "oauth_timestamp", "oauth_nonce",
	}
	// requiredForRequestToken: asking for temporary credentials (§2.1).
	// There is no token yet; OAuth 1.0a added the callback, and Jira's
	// application links speak 1.0a only.
	requiredForRequestToken = []string{
		"oauth_consumer_key", "oauth_signature_method",
		"oauth_signature", "oauth_timestamp", "oauth_nonce", "oauth_callback",
	}
	// requiredForExchange: trading an approved request token for an access
	// token (§2.3); the verifier proves the user's approval came back
	// through the consumer's callback.
	requiredForExchange = append(append([]string(nil), requiredForAccess...), "oauth_verifier")
)

// tokenKind separates what a token may be used for: a request token must
// never open the REST API, and an access token cannot be exchanged again.
type tokenKind int

const (
	accessToken tokenKind = iota + 1
	requestToken
)

// decision is the user's answer on the authorize page.
type decision int

const (
	undecided decision = iota
	approved
	denied
)

type tokenRecord struct {
	consumer string
	secret   string
	kind     tokenKind

	// Request tokens only.
	callback  string    // oauth_callback: an absolute http(s) URL or "oob"
	expires   time.Time // requestTokenLife after issue
	decision  decision
	verifier  string // set on approval
	exchanged bool   // traded for an access token; kept to answer token_used

	// Access tokens issued by the dance only.
	session string // oauth_session_handle
}

// verifyAccess checks a request signed with an access token.
func (s *Server) verifyAccess(sr *signedRequest) *oauthProblem {
	return s.verifySigned(sr, requiredForAccess, func(consumer string, _ time.Time) *oauthProblem {
		s.mu.Lock()
		rec, known := s.tokens[sr.protocol["oauth_token"]]
		s.mu.Unlock()
		if !known || rec.consumer != consumer || rec.kind != accessToken {
			return problem(ProblemTokenRejected)
		}
		return nil
	})
}

// verifySigned checks a signed request in the order Jira does: shape,
// version, method, consumer, token (checkToken, which may be nil), clock,
// signature, replay. Token checks come before the clock and the signature
// as in Atlassian's servlets, so an expired request token is reported as
// token_expired even when the client's clock is off too. The nonce is
// checked last, together with recording it, so that a forged request
// cannot burn a nonce and two copies of a good request racing each other
// cannot both pass.
func (s *Server) verifySigned(sr *signedRequest, required []string, checkToken func(consumer string, now time.Time) *oauthProblem) *oauthProblem {
	var absent []string
	for _, name := range required {
		if sr.protocol[name] == "" {
			absent = append(absent, name)
		}
	}
	if len(absent) > 0 {
		return problem(ProblemParameterAbsent, param{"oauth_parameters_absent", strings.Join(absent, "&")})
	}
	if v, ok := sr.protocol["oauth_version"]; ok && v != "1.0" {
		return problem(ProblemVersionRejected, param{"oauth_acceptable_versions", "1.0-1.0"})
	}
	if m := sr.protocol["oauth_signature_method"]; m != "RSA-SHA1" {
		// Jira's application links accept RSA-SHA1 only: there is no shared
		// consumer secret for HMAC or PLAINTEXT to use.
		return problem(ProblemSignatureMethodRejected, param{"oauth_acceptable_signature_methods", "RSA-SHA1"})
	}
	consumer, tok := sr.protocol["oauth_consumer_key"], sr.protocol["oauth_token"]
	s.mu.Lock()
	pub := s.consumers[consumer]
	s.mu.Unlock()
	if pub == nil {
		return problem(ProblemConsumerKeyUnknown)
	}
	now := s.now()
	if checkToken != nil {
		if p := checkToken(consumer, now); p != nil {
			return p
		}
	}

	ts, err := strconv.ParseInt(sr.protocol["oauth_timestamp"], 10, 64)
	lo, hi := now.Add(-timestampWindow).Unix(), now.Add(timestampWindow).Unix()
	if err != nil || ts < lo || ts > hi {
		return problem(ProblemTimestampRefused, param{"oauth_acceptable_timestamps", fmt.Sprintf("%d-%d", lo, hi)})
	}

	base := sr.baseString()
	sig, err := base64.StdEncoding.DecodeString(sr.protocol["oauth_signature"])
	if err == nil {
		digest := sha1.Sum([]byte(base)) //nolint:gosec // RSA-SHA1 is the protocol
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA1, digest[:], sig)
	}
	if err != nil {
		s.log.Debug("oauth signature does not verify", "consumer_key", consumer, "base_string", base, "error", err)
		return problem(ProblemSignatureInvalid,
			param{"oauth_signature", sr.protocol["oauth_signature"]},
			param{"oauth_signature_base_string", base},
			param{"oauth_signature_method", "RSA-SHA1"})
	}

	key := strings.Join([]string{consumer, tok, sr.protocol["oauth_nonce"], sr.protocol["oauth_timestamp"]}, "\x00")
	if !s.nonces.add(key, time.Unix(ts, 0), now) {
		return problem(ProblemNonceUsed)
	}
	return nil
}

// nonceCache remembers consumer+token+nonce+timestamp for as long as the
// timestamp could still be accepted; after that the clock check refuses a
// replay on its own, so the entry can go.
type nonceCache struct {
	mu    sync.Mutex
	seen  map[string]time.Time
	order []string // insertion order, for pruning and eviction
	limit int
}

func newNonceCache(limit int) *nonceCache {
	return &nonceCache{seen: map[string]time.Time{}, limit: limit}
}

// add records key and reports whether it was new. When full it drops
// expired entries first and then the oldest ones: a replay of an evicted
// nonce would pass, which is the price of a bound, and the limit is set so
// tests never reach it.
func (c *nonceCache) add(key string, ts, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[key]; ok {
		return false
	}
	if len(c.seen) >= c.limit {
		c.prune(now)
	}
	for len(c.seen) >= c.limit && len(c.order) > 0 {
		delete(c.seen, c.order[0])
		c.order = c.order[1:]
	}
	c.seen[key] = ts
	c.order = append(c.order, key)
	return true
}

func (c *nonceCache) prune(now time.Time) {
	cutoff := now.Add(-timestampWindow)
	kept := c.order[:0]
	for _, k := range c.order {
		if c.seen[k].Before(cutoff) {
			delete(c.seen, k)
			continue
		}
		kept = append(kept, k)
	}
	// Clear the tail so dropped keys are not kept alive by the backing array.
	clear(c.order[len(kept):])
	c.order = kept
}

func (c *nonceCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// writeOAuthProblem answers like net.oauth's OAuthServlet.handleException:
// 401, a WWW-Authenticate header with the percent-encoded realm and every
// oauth_* problem parameter, and the same parameters form-encoded in the body.
func writeOAuthProblem(w http.ResponseWriter, realm string, p *oauthProblem) {
	all := append([]param{{"oauth_problem", p.problem}}, p.extra...)
	var hdr, body strings.Builder
	hdr.WriteString(`OAuth realm="` + percentEncode(realm) + `"`)
	for i, q := range all {
		hdr.WriteString(", " + percentEncode(q.name) + `="` + percentEncode(q.value) + `"`)
		if i > 0 {
			body.WriteByte('&')
		}
		body.WriteString(percentEncode(q.name) + "=" + percentEncode(q.value))
	}
	w.Header().Set("WWW-Authenticate", hdr.String())
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
	w.WriteHeader(http.StatusUnauthorized)
	io.WriteString(w, body.String())
}
