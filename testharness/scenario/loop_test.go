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
	"slices"
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

// loopLinks are the links of the loop test: group → issue. g3 and g4
// share APP-3, so an echo applied again would bounce a change of one of
// them to the other.
var loopLinks = []struct{ group, issue string }{{"g1", "APP-1"}, {"g2", "APP-2"}, {"g3", "APP-3"}, {"g4", "APP-3"}}

// loopModel is what each side must hold: per group its assignee and
// whether it is resolved, per issue its assignee and whether it is done;
// and how many writes jirasync must have made to each side.
type loopModel struct {
	assignee, issueAssignee map[string]string // "" for nobody
	resolved, done          map[string]bool
	jiraWrites, platformSet int
}

// TestTwoWayLoopSettles: N changes by people, alternating between Jira
// and the platform, over four groups and three issues (two groups share
// one), assignees and statuses, every direction on and both sides
// echoing. Each change must reach the other side, with one write per
// changed issue or group there (bounded here by the model's count plus a
// small constant), nothing may bounce from one group to another, no
// delivery may fail, and both sides must end as the model says.
func TestTwoWayLoopSettles(t *testing.T) {
	const n = 32
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
	m := loopModel{assignee: map[string]string{}, issueAssignee: map[string]string{}, resolved: map[string]bool{}, done: map[string]bool{}}
	for i, l := range loopLinks {
		if _, ok := m.issueAssignee[l.issue]; !ok {
			m.issueAssignee[l.issue] = ""
			if err := jira.AddIssue(fakejira.Issue{Key: l.issue, ID: strconv.Itoa(10042 + i)}); err != nil {
				t.Fatal(err)
			}
		}
		m.assignee[l.group] = ""
		data.Groups = append(data.Groups, platform.Group{ID: l.group, Project: "backend"})
		data.Links = append(data.Links, platform.Link{Group: l.group, Installation: "jira1", IssueKey: l.issue})
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
	// other picks someone other than current (or nobody), varying with i.
	other := func(i int, current string) string {
		candidates := append(slices.Clone(people), "")
		for k := range candidates {
			if c := candidates[(i+k)%len(candidates)]; c != current {
				return c
			}
		}
		panic("unreachable")
	}

	start := time.Now()
	jiraOps, platformOps := 0, 0
	for i := range n {
		l := loopLinks[(i/2)%len(loopLinks)]
		switch {
		case i%2 == 0 && i%3 == 2: // a person moves the issue into or out of done
			done := !m.done[l.issue]
			target := "4" // Reopened
			if done {
				target = "5" // Resolved
			}
			if err := jira.Edit(l.issue, nil, target); err != nil {
				t.Fatal(err)
			}
			m.done[l.issue] = done
			for _, g := range groupsOf(l.issue) {
				if m.resolved[g] != done {
					m.resolved[g] = done
					m.platformSet++
				}
			}
			jiraOps++
		case i%2 == 0: // a person assigns the issue
			next := other(i, m.issueAssignee[l.issue])
			if err := jira.Edit(l.issue, &next, ""); err != nil {
				t.Fatal(err)
			}
			m.issueAssignee[l.issue] = next
			for _, g := range groupsOf(l.issue) {
				if m.assignee[g] != next {
					m.assignee[g] = next
					m.platformSet++
				}
			}
			jiraOps++
		case i%3 == 2: // a person resolves or unresolves the group
			resolved := !m.resolved[l.group]
			status := platform.StatusUnresolved
			if resolved {
				status = platform.StatusResolved
			}
			personOnPlatform(i, map[string]any{"assignments": []any{}, "statuses": []any{map[string]any{"group": l.group, "status": status}}})
			m.resolved[l.group] = resolved
			if m.done[l.issue] != resolved {
				m.done[l.issue] = resolved
				m.jiraWrites++
			}
			platformOps++
		default: // a person assigns the group
			next := other(i, m.assignee[l.group])
			var a any = next
			if next == "" {
				a = nil
			}
			personOnPlatform(i, map[string]any{"assignments": []any{map[string]any{"group": l.group, "assignee": a}}})
			m.assignee[l.group] = next
			if m.issueAssignee[l.issue] != next {
				m.issueAssignee[l.issue] = next
				m.jiraWrites++
			}
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
	if len(writes) > m.jiraWrites+slack {
		t.Errorf("Jira received %d writes from jirasync, want at most %d (the %d changes the platform's people made there, +%d)", len(writes), m.jiraWrites+slack, m.jiraWrites, slack)
	}
	if applied > m.platformSet+slack {
		t.Errorf("the platform received %d changes from jirasync, want at most %d (the %d changes Jira's people made there, +%d)", applied, m.platformSet+slack, m.platformSet, slack)
	}
	for g, want := range m.assignee {
		a, _ := fp.Assignee(g)
		st, _ := fp.Status(g)
		if got := show(a); (a == nil) != (want == "") || (a != nil && *a != want) {
			t.Errorf("group %s is assigned to %s, want %q", g, got, want)
		}
		if (st == platform.StatusResolved) != m.resolved[g] {
			t.Errorf("group %s is %s, want resolved %v", g, st, m.resolved[g])
		}
	}
	for key, want := range m.issueAssignee {
		is, _ := jira.Issue(key)
		if is.Assignee != want {
			t.Errorf("%s is assigned to %q, want %q", key, is.Assignee, want)
		}
		if done := is.Status == "5"; done != m.done[key] {
			t.Errorf("%s has status %s, want done %v", key, is.Status, m.done[key])
		}
	}
	t.Logf("%d changes (%d in Jira, %d on the platform) in %s (%s each, settled): Jira received %d writes (model %d), the platform %d changes from jirasync (model %d); %d deliveries (%d Jira echoes, %d platform events)",
		n, jiraOps, platformOps, elapsed.Round(time.Millisecond), (elapsed / n).Round(time.Millisecond), len(writes), m.jiraWrites, applied, m.platformSet, total, len(jira.Echoes()), sent)
}

// groupsOf lists the groups linked to an issue in the loop test.
func groupsOf(issue string) []string {
	var out []string
	for _, l := range loopLinks {
		if l.issue == issue {
			out = append(out, l.group)
		}
	}
	return out
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
