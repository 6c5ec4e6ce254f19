// Package fakejira is a simulated Jira Server / Data Center for tests. It
// listens on loopback only and behaves like the parts of Jira the product
// touches: it really verifies OAuth 1.0a RSA-SHA1 signatures against the
// consumer's public key, runs the OAuth dance of an application link
// (request token, authorize page, access token), answers REST calls with
// Jira's JSON shapes and error bodies (users and user search, statuses,
// issues, assignment and workflow transitions, each write recorded), offers
// the webhook administration API of its Jira version and fires events at the
// webhooks registered there (with the echo on, the issue-updated webhook after
// every change to an issue, as Jira does), and
// can be taken down (connection refused) or made to fail (5xx) on demand.
// Every request is recorded so tests can assert on what reached Jira and
// whether it was properly signed.
package fakejira

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// User is a Jira user account. The JSON form matches Jira's field names so a
// users file can be written by copying from a real Jira's REST answers.
type User struct {
	Name         string `json:"name"`
	Key          string `json:"key"`
	EmailAddress string `json:"emailAddress"`
	DisplayName  string `json:"displayName"`
	Active       bool   `json:"active"`
}

// Config configures a Server.
type Config struct {
	// Version is what serverInfo reports, "9.12.2" when empty. Use a
	// "10.3.1"-style value to stand in for Jira 10.
	Version string
	// Logger receives one record per request and OAuth diagnostics; nil
	// discards them.
	Logger *slog.Logger
	// Now is the server's clock, for the OAuth timestamp window and
	// Request.At; nil means time.Now. Tests move it to provoke
	// timestamp_refused without waiting.
	Now func() time.Time
	// Addr is the listen address, "127.0.0.1:0" when empty. It must be a
	// loopback IP: the simulated Jira accepts any consumer it is told about
	// and must never be reachable from another machine.
	Addr string
}

// Request is one request the server received.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	// ConsumerKey and Token are the oauth_consumer_key and oauth_token the
	// request carried, whether or not they checked out.
	ConsumerKey string
	Token       string
	// Verified is true when the OAuth signature checked out. An unsigned
	// request to an anonymous endpoint is not Verified and has no Problem.
	Verified bool
	// Problem is the oauth_problem when verification failed, "" otherwise.
	Problem string
	// Status is the HTTP status answered; 0 while the answer is being written.
	Status int
	At     time.Time
}

// Server is a running simulated Jira. Its methods are safe for concurrent use.
type Server struct {
	log            *slog.Logger
	now            func() time.Time
	version        string
	versionNumbers [3]int
	addr           string // host:port, fixed for the server's life
	url            string
	nonces         *nonceCache

	// life serialises SetDown and Close; it is never held by a handler.
	life   sync.Mutex
	hs     *http.Server
	served chan struct{} // closed when the current Serve returns
	closed bool

	// mu guards the simulated Jira's data, which handlers read.
	mu        sync.Mutex
	consumers map[string]*rsa.PublicKey
	tokens    map[string]tokenRecord
	users     []User
	statuses  []Status
	failure   int
	requests  []*Request
	// webhooks are kept in registration order; webhookSeq numbers them as
	// Jira's database sequence would, never reusing an id.
	webhooks      []*webhookRecord
	webhookSeq    int
	webhookDenied bool
	// issues by key; transitions nil means DefaultTransitions; writes
	// are every write that reached an issue resource (issues.go).
	issues      map[string]*Issue
	transitions []Transition
	writes      []Write
	// The webhook echo (echo.go): echoQueue waits for the one sender
	// goroutine, running while echoSending; echoes were sent.
	echoOn       bool
	echoQueue    []Echo
	echoSending  bool
	echoes       []Echo
	changelogSeq int
}

// Start listens on cfg.Addr (loopback, an ephemeral port by default) and
// serves in the background until Close.
func Start(cfg Config) (*Server, error) {
	s := &Server{
		log:       cfg.Logger,
		now:       cfg.Now,
		version:   cfg.Version,
		nonces:    newNonceCache(maxNonces),
		consumers: map[string]*rsa.PublicKey{},
		tokens:    map[string]tokenRecord{},
		statuses:  DefaultStatuses,
		// Jira numbers changelogs from its database sequence; any
		// start will do, but not one that collides with the payloads'.
		changelogSeq: 30000,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.version == "" {
		s.version = "9.12.2"
	}
	var err error
	if s.versionNumbers, err = parseVersion(s.version); err != nil {
		return nil, err
	}
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("fakejira: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("fakejira: listen address %q is not a loopback IP", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakejira: %w", err)
	}
	// Remember the concrete port so SetDown(false) comes back on the same
	// URL, which is what installations have stored as Jira's base URL.
	s.addr = ln.Addr().String()
	s.url = "http://" + s.addr
	s.serve(ln)
	s.log.Info("simulated jira started", "url", s.url, "version", s.version)
	return s, nil
}

// URL is the base URL, without a trailing slash. It does not change when the
// server is taken down and brought back.
func (s *Server) URL() string { return s.url }

// AddConsumer registers an application link's incoming OAuth consumer: the
// key the client signs with and the public half of its RSA key. Adding an
// existing key replaces its public key.
func (s *Server) AddConsumer(consumerKey string, pub *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consumers[consumerKey] = pub
}

// AddAccessToken registers an access token as if a user had completed the
// OAuth dance for consumerKey. The secret is kept as Jira keeps it, though
// RSA-SHA1 signatures do not use it.
func (s *Server) AddAccessToken(consumerKey, token, tokenSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = tokenRecord{consumer: consumerKey, secret: tokenSecret, kind: accessToken}
}

// AddUser adds a user, or replaces the one with the same name
// (case-insensitively, as Jira compares user names) or the same key. An
// empty Key defaults to the lowercased name, the key Jira gives accounts
// created before Jira 8.
func (s *Server) AddUser(u User) {
	if u.Key == "" {
		u.Key = strings.ToLower(u.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.users[:0]
	for _, old := range s.users {
		if !strings.EqualFold(old.Name, u.Name) && old.Key != u.Key {
			kept = append(kept, old)
		}
	}
	s.users = append(kept, u)
}

// SetFailure makes every REST answer the given status (500, 503, ...) with
// a Jira-like error body; 0 restores normal service. OAuth is still checked
// first so Requests shows whether the failed calls were properly signed.
func (s *Server) SetFailure(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failure = status
}

// Requests returns every request received since the start or the last
// ResetRequests, in the order they arrived.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = *r
	}
	return out
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// SetDown takes the server down or brings it back. Down closes the listener
// and every open connection, so clients see connection refused (or a reset
// mid-request) as they would with a stopped Jira; up listens again on the
// same address. Setting the state it is already in does nothing.
func (s *Server) SetDown(down bool) error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return errors.New("fakejira: server is closed")
	}
	switch {
	case down && s.hs != nil:
		s.stop()
		s.log.Info("simulated jira down", "url", s.url)
	case !down && s.hs == nil:
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("fakejira: listening again on %s: %w", s.addr, err)
		}
		s.serve(ln)
		s.log.Info("simulated jira up", "url", s.url)
	}
	return nil
}

// Close stops the server for good. Recorded requests stay readable.
func (s *Server) Close() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.hs != nil {
		s.stop()
	}
	return nil
}

// serve starts a fresh http.Server on ln; an http.Server cannot be reused
// once closed, so every up period gets its own. Callers hold life (or are
// Start, before the server is shared).
func (s *Server) serve(ln net.Listener) {
	hs := &http.Server{
		Handler:           http.HandlerFunc(s.handle),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("simulated jira stopped serving", "error", err)
		}
	}()
	s.hs, s.served = hs, done
}

// stop closes the listener and all connections and waits for Serve to
// return, so that when SetDown(true) returns the port really refuses.
// Callers hold life.
func (s *Server) stop() {
	s.hs.Close()
	<-s.served
	s.hs, s.served = nil, nil
}
