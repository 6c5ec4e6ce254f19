package app

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/store/storetest"
)

// TestDatabaseOutage runs the host on PostgreSQL through a TCP proxy that
// the test cuts: while the database is unreachable a webhook is answered
// 503 with a clear reason and nothing is stored (so Jira's re-send is the
// delivery), readiness fails, and once the database is back the same
// delivery is stored and applied once.
func TestDatabaseOutage(t *testing.T) {
	dsn := storetest.DSN(t, "postgres")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startCutProxy(t, u.Host)
	u.Host = proxy.addr()
	a, srv, tok := newTestAppConfig(t, func(c *Config) {
		c.DB, c.SecretKeyFile, c.AdminToken = u.String(), filepath.Join(t.TempDir(), "secret.key"), "outage-test-admin-token"
	})
	const assign = `{"webhookEvent":"jira:issue_updated","timestamp":5,"issue":{"id":"1","key":"APP-1","fields":{"assignee":{"emailAddress":"alice@example.com"}}},"changelog":{"id":"9","items":[{"field":"assignee"}]}}`

	proxy.cut(true)
	status, ans := post(t, srv.URL+WebhookPath+tok, assign)
	if status != http.StatusServiceUnavailable || !strings.Contains(ans["error"].(string), "not stored") {
		t.Fatalf("database down: %d %v, want 503 saying the delivery was not stored", status, ans)
	}
	if resp, err := http.Get(srv.URL + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the database down: %v %v", resp, err)
	}

	proxy.cut(false)
	status, ans = post(t, srv.URL+WebhookPath+tok, assign)
	if status != http.StatusOK || ans["status"] != store.DeliveryDone || ans["duplicate"] == true {
		t.Fatalf("database back: %d %v, want 200, done, not a duplicate", status, ans)
	}
	counts, err := a.Store().DeliveryCounts(context.Background())
	if err != nil || counts[store.DeliveryDone] != 1 || len(counts) != 1 {
		t.Fatalf("stored %v, %v; want the one delivery, done", counts, err)
	}
	if g, _ := a.Store().Group(context.Background(), "", "g1"); g.Assignee == nil || *g.Assignee != "alice" {
		t.Errorf("g1 = %v, want alice", g.Assignee)
	}
}

// cutProxy forwards TCP connections to a server until cut: then it closes
// every open connection and refuses new ones, as a database behind a
// failed network would look.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut(true) })
	go p.serve()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *cutProxy) forward(c net.Conn) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.mu.Unlock()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, s) {
		return
	}
	go func() { io.Copy(s, c); s.Close() }()
	io.Copy(c, s)
	c.Close()
}

// track registers a connection pair, or closes it if the proxy was cut
// meanwhile.
func (p *cutProxy) track(c, s net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		c.Close()
		s.Close()
		return false
	}
	p.conns[c], p.conns[s] = true, true
	return true
}

func (p *cutProxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// TestPostgresStartRefusals: the host refuses to start, saying why, when
// the database is unreachable or no shared secret key is given.
func TestPostgresStartRefusals(t *testing.T) {
	ctx := context.Background()
	t.Setenv("JIRASYNC_SECRET_KEY", "")
	closed := "postgres://jirasync@" + freeTCPAddr(t) + "/jirasync?sslmode=disable&connect_timeout=2"
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no shared key", Config{DB: closed, Engine: "native"}, "JIRASYNC_SECRET_KEY"},
		{"no admin token", Config{DB: closed, Engine: "native", SecretKeyFile: filepath.Join(t.TempDir(), "k")}, "-admin-token"},
		{"database unreachable", Config{DB: closed, Engine: "native", SecretKeyFile: filepath.Join(t.TempDir(), "k"),
			AdminToken: "outage-test-admin-token"}, "postgres"},
	} {
		a, err := New(ctx, tt.cfg)
		if err == nil {
			a.Close(ctx)
			t.Errorf("%s: started", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want it to mention %s", tt.name, err, tt.want)
		}
	}
}

// freeTCPAddr is a loopback address nothing listens on.
func freeTCPAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
