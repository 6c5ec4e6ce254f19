package scenario

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	psrv := httptest.NewServer(fp.Handler())
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
	// Like a real platform, the simulated one tells jirasync of every
	// change to a group, jirasync's own applies included.
	if err := fp.SendEvents(srv.URL+EventsPath, platformToken); err != nil {
		t.Fatal(err)
	}
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
			sentBefore := len(fp.SentEvents())
			if err := settleOnce(ctx, host.Store(), jira); err != nil {
				t.Fatal(err)
			}
			if err := fp.WaitEvents(ctx); err != nil {
				t.Fatal(err)
			}
			if err := settleOnce(ctx, host.Store(), jira); err != nil {
				t.Fatal(err)
			}
			if err := fp.WaitEvents(ctx); err != nil {
				t.Fatal(err)
			}
			if len(fp.SentEvents()) == sentBefore && len(jira.Echoes()) == before {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the two sides did not settle within a minute")
			}
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
			if err := fp.SetStatus(l.group, status); err != nil {
				t.Fatal(err)
			}
			m.resolved[l.group] = resolved
			if m.done[l.issue] != resolved {
				m.done[l.issue] = resolved
				m.jiraWrites++
			}
			platformOps++
		default: // a person assigns the group
			next := other(i, m.assignee[l.group])
			var a *string
			if next != "" {
				a = &next
			}
			if err := fp.Assign(l.group, a); err != nil {
				t.Fatal(err)
			}
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
	sent := fp.SentEvents()
	for _, e := range sent {
		if e.Err != "" {
			t.Errorf("jirasync refused the platform's event %+v: %s", e.Event, e.Err)
		}
	}
	writes := jira.Writes()
	for _, w := range writes {
		if w.Status != http.StatusNoContent {
			t.Errorf("Jira write %+v was not accepted", w)
		}
	}
	applied := 0
	for _, rec := range fp.Keys() { // a person's changes carry no key
		applied += rec.Changed
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
		n, jiraOps, platformOps, elapsed.Round(time.Millisecond), (elapsed / n).Round(time.Millisecond), len(writes), m.jiraWrites, applied, m.platformSet, total, len(jira.Echoes()), len(sent))
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
