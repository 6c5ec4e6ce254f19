package scenario

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/app"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/testharness/fakejira"
	"github.com/jirasync/jirasync/testharness/fakeplatform"
)

// The loop test (issue 12, "no echo loops"): the simulated Jira fires its
// webhook back on every change made through its REST API (and on a
// person's edit), the simulated platform posts an event to jirasync on
// every change applied to it (jirasync's own and a person's). People make
// N changes, alternating sides. Each side must see a bounded number of
// writes from jirasync (one per change made on the other side, plus a
// small constant), and at the end both sides must agree.

// platformEcho serves the simulated platform's contract and, like a real
// platform, tells jirasync of every change applied to a group: after
// each POST /v1/assignments that changed a group it POSTs the matching
// event to jirasync's events endpoint with the platform token. Events go
// out one at a time, in order, after the apply has been answered, as a
// platform sends them after its transaction.
type platformEcho struct {
	fp     *fakeplatform.Server
	inner  http.Handler
	target string // jirasync's events URL
	token  string

	mu      sync.Mutex
	queue   [][]byte
	sending bool
	sent    int
	refused []string // events jirasync did not answer 2xx
	seq     int
}

func (p *platformEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/assignments" {
		p.inner.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req struct {
		Assignments []struct {
			Group string `json:"group"`
		} `json:"assignments"`
		Statuses []struct {
			Group string `json:"group"`
		} `json:"statuses"`
	}
	json.Unmarshal(body, &req) // the platform itself refuses a bad body
	type state struct {
		assignee *string
		status   string
	}
	groups := map[string]state{}
	var order []string
	for _, g := range append(append([]struct {
		Group string `json:"group"`
	}{}, req.Assignments...), req.Statuses...) {
		if _, ok := groups[g.Group]; !ok {
			a, _ := p.fp.Assignee(g.Group)
			st, _ := p.fp.Status(g.Group)
			groups[g.Group] = state{a, st}
			order = append(order, g.Group)
		}
	}
	p.inner.ServeHTTP(w, r)
	for _, g := range order {
		before := groups[g]
		a, _ := p.fp.Assignee(g)
		st, _ := p.fp.Status(g)
		if !sameAssignee(a, before.assignee) {
			p.enqueue(map[string]any{"type": "group.assigned", "group": g, "assignee": a})
		}
		if st != before.status {
			typ := "group.unresolved"
			if st == platform.StatusResolved {
				typ = "group.resolved"
			}
			p.enqueue(map[string]any{"type": typ, "group": g})
		}
	}
}

func (p *platformEcho) enqueue(ev map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	ev["id"] = "platform-" + strconv.Itoa(p.seq)
	ev["occurred_at"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(ev)
	p.queue = append(p.queue, b)
	if !p.sending {
		p.sending = true
		go p.send()
	}
}

func (p *platformEcho) send() {
	client := &http.Client{Timeout: time.Minute}
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.sending = false
			p.mu.Unlock()
			return
		}
		b := p.queue[0]
		p.queue = p.queue[1:]
		p.mu.Unlock()
		problem := ""
		req, _ := http.NewRequest(http.MethodPost, p.target, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+p.token)
		resp, err := client.Do(req)
		if err != nil {
			problem = err.Error()
		} else {
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				problem = fmt.Sprintf("%d %s", resp.StatusCode, truncate(answer))
			}
		}
		p.mu.Lock()
		p.sent++
		if problem != "" {
			p.refused = append(p.refused, string(b)+": "+problem)
		}
		p.mu.Unlock()
	}
}

// counts is how many events were sent, and whether any wait to be.
func (p *platformEcho) counts() (sent int, busy bool, refused []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent, p.sending || len(p.queue) > 0, append([]string(nil), p.refused...)
}

// loopPair is a group and the one Jira issue linked to it.
type loopPair struct{ group, issue string }

// TestTwoWayLoopSettles: N changes by people, alternating between Jira
// and the platform, over two group/issue pairs, assignees and statuses,
// every direction on and both sides echoing. jirasync makes exactly one
// write on the other side per change (bounded here by N/2 + 2 per side),
// no delivery fails, and the two sides end in agreement.
func TestTwoWayLoopSettles(t *testing.T) {
	const n = 24
	ctx := t.Context()
	engine, plugin := "native", os.Getenv("JIRASYNC_PLUGIN")
	if plugin != "" {
		engine = "wasm"
	}
	r := &Runner{Engine: engine, PluginPath: plugin}
	if err := r.ensureKey(); err != nil {
		t.Fatal(err)
	}
	jira, err := fakejira.Start(fakejira.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer jira.Close()
	people := []string{"alice", "bob", "carol"}
	var data platform.Data
	data.Organizations = []platform.Organization{{ID: "acme"}}
	data.Projects = []platform.Project{{ID: "backend", Organization: "acme"}}
	for i, u := range people {
		jira.AddUser(fakejira.User{Name: u, Key: fmt.Sprintf("JIRAUSER1000%d", i), EmailAddress: u + "@example.com", DisplayName: strings.ToUpper(u[:1]) + u[1:], Active: true})
		data.Users = append(data.Users, platform.User{ID: u, Emails: []platform.Email{{Address: u + "@example.com", Verified: true}}, Projects: []string{"backend"}})
	}
	pairs := []loopPair{{"g1", "APP-1"}, {"g2", "APP-2"}}
	for i, p := range pairs {
		if err := jira.AddIssue(fakejira.Issue{Key: p.issue, ID: strconv.Itoa(10042 + i)}); err != nil {
			t.Fatal(err)
		}
		data.Groups = append(data.Groups, platform.Group{ID: p.group, Project: "backend"})
		data.Links = append(data.Links, platform.Link{Group: p.group, Installation: "jira1", IssueKey: p.issue})
	}

	fp := fakeplatform.New(platformToken, nil)
	if err := fp.Load(&data); err != nil {
		t.Fatal(err)
	}
	echo := &platformEcho{fp: fp, inner: fp.Handler(), token: platformToken}
	psrv := httptest.NewServer(echo)
	defer psrv.Close()

	dir := t.TempDir()
	admin := make([]byte, 24)
	rand.Read(admin)
	host, err := app.New(ctx, app.Config{DB: filepath.Join(dir, "jirasync.db"), PluginPath: plugin, Engine: engine,
		SecretKeyFile: filepath.Join(dir, "secret.key"), AdminToken: base64.RawURLEncoding.EncodeToString(admin),
		PoolSize: 2, PlatformURL: psrv.URL, PlatformToken: platformToken, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close(context.WithoutCancel(ctx))
	on := true
	sc := &Scenario{Platform: Platform{Data: data, Installations: []Installation{{ID: "jira1", ExternalID: "jira.example.com:jirasync",
		WebhookSecret: "s3cret", Organizations: []InstallationOrg{{ID: "acme", InboundAssignee: &on, InboundStatus: true,
			OutboundAssignee: true, OutboundStatus: true,
			StatusMappings: []store.StatusMapping{{JiraProject: "APP", ResolveStatus: "5", UnresolveStatus: "4"}}}}}}}}
	if err := r.seed(ctx, host.Store(), jira, sc, false); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(host.Handler())
	defer srv.Close()
	echo.target = srv.URL + EventsPath
	if err := registerEcho(jira, sc, srv.URL); err != nil {
		t.Fatal(err)
	}

	// settle waits until neither side echoes any more and every delivery
	// is settled.
	settle := func() {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			before := len(jira.Echoes())
			sentBefore, _, _ := echo.counts()
			if err := settleOnce(ctx, host.Store(), jira); err != nil {
				t.Fatal(err)
			}
			for {
				if _, busy, _ := echo.counts(); !busy {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := settleOnce(ctx, host.Store(), jira); err != nil {
				t.Fatal(err)
			}
			sent, busy, _ := echo.counts()
			if !busy && sent == sentBefore && len(jira.Echoes()) == before {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the two sides did not settle within a minute")
			}
		}
	}
	// A person on the platform changes a group: the platform applies it
	// (through its own apply path, under a key of its own) and tells
	// jirasync, as after any change.
	personOnPlatform := func(i int, body map[string]any) {
		t.Helper()
		round := 0
		body["installation"], body["organizations"], body["delivery"], body["round"] = "jira1", []string{"acme"}, i+1, &round
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, psrv.URL+"/v1/assignments", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+platformToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "person-"+strconv.Itoa(i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("person's change %d on the platform: %d %s", i, resp.StatusCode, answer)
		}
	}

	start := time.Now()
	jiraOps, platformOps := 0, 0
	for i := range n {
		p := pairs[(i/2)%len(pairs)]
		onJira := i%2 == 0
		if i%3 == 2 {
			// Toggle the status.
			resolved := false
			if st, _ := fp.Status(p.group); st == platform.StatusResolved {
				resolved = true
			}
			if onJira {
				target := "5" // Resolved, a done status
				if is, _ := jira.Issue(p.issue); is.Status == "5" {
					target = "4" // Reopened
				}
				if err := jira.Edit(p.issue, nil, target); err != nil {
					t.Fatal(err)
				}
			} else {
				status := platform.StatusResolved
				if resolved {
					status = platform.StatusUnresolved
				}
				personOnPlatform(i, map[string]any{"assignments": []any{}, "statuses": []any{map[string]any{"group": p.group, "status": status}}})
			}
		} else {
			// Assign someone else (or nobody).
			current, _ := fp.Assignee(p.group)
			if onJira {
				is, _ := jira.Issue(p.issue)
				current = &is.Assignee
			}
			next := ""
			for k := 0; k < 4; k++ {
				cand := append(people, "")[(i+k)%4]
				if current == nil || cand != *current {
					next = cand
					break
				}
			}
			if onJira {
				if err := jira.Edit(p.issue, &next, ""); err != nil {
					t.Fatal(err)
				}
			} else {
				var a any = next
				if next == "" {
					a = nil
				}
				personOnPlatform(i, map[string]any{"assignments": []any{map[string]any{"group": p.group, "assignee": a}}})
			}
		}
		if onJira {
			jiraOps++
		} else {
			platformOps++
		}
		settle()
	}
	elapsed := time.Since(start)

	counts, err := host.Store().DeliveryCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for status, c := range counts {
		total += c
		if status != store.DeliveryDone && c > 0 {
			t.Errorf("%d deliveries %s, want every one done: %v", c, status, counts)
		}
	}
	sent, _, refused := echo.counts()
	for _, e := range refused {
		t.Errorf("jirasync refused the platform's event %s", e)
	}
	writes := jira.Writes()
	for _, w := range writes {
		if w.Status != http.StatusNoContent {
			t.Errorf("Jira write %+v was not accepted", w)
		}
	}
	applied := 0
	for key, rec := range fp.Keys() {
		if !strings.HasPrefix(key, "person-") {
			applied += rec.Changed
		}
	}
	const slack = 2
	if len(writes) > platformOps+slack {
		t.Errorf("Jira received %d writes from jirasync for %d changes made on the platform: want at most %d", len(writes), platformOps, platformOps+slack)
	}
	if applied > jiraOps+slack {
		t.Errorf("the platform received %d changes from jirasync for %d changes made in Jira: want at most %d", applied, jiraOps, jiraOps+slack)
	}
	for _, p := range pairs {
		a, _ := fp.Assignee(p.group)
		st, _ := fp.Status(p.group)
		is, _ := jira.Issue(p.issue)
		if got := show(a); (a == nil && is.Assignee != "") || (a != nil && *a != is.Assignee) {
			t.Errorf("%s is assigned to %s, %s to %q: the sides disagree", p.group, got, p.issue, is.Assignee)
		}
		done := is.Status == "5" || is.Status == "6" || is.Status == "10001"
		if done != (st == platform.StatusResolved) {
			t.Errorf("%s is %s, %s has status %s: the sides disagree", p.group, st, p.issue, is.Status)
		}
	}
	t.Logf("%d changes (%d in Jira, %d on the platform) in %s (%s each, settled): Jira received %d writes, the platform %d changes from jirasync; %d deliveries (%d Jira echoes, %d platform events)",
		n, jiraOps, platformOps, elapsed.Round(time.Millisecond), (elapsed / n).Round(time.Millisecond), len(writes), applied, total, len(jira.Echoes()), sent)
}

// settleOnce waits for the simulated Jira's echoes and the pipeline.
func settleOnce(ctx context.Context, st *store.Store, jira *fakejira.Server) error {
	wctx, cancel := context.WithTimeout(ctx, settleLimit)
	defer cancel()
	if err := jira.WaitEchoes(wctx); err != nil {
		return err
	}
	return waitSettled(ctx, st, settleLimit)
}
