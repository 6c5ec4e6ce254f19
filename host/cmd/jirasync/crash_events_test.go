package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/testharness/fakeplatform"
)

// Platform events in the crash test: groups e0… (apart from the webhooks'
// groups: an event naming the assignee a webhook just set would be that
// webhook's echo, ignored by design) get assignment events, posted to
// /api/v1/events beside the webhooks; the plugin carries each to the
// group's Jira issue EVT-n on crashJira, which records every write.
const (
	crashEventGroups    = 10
	crashEventsPerGroup = 20
)

// platformEvent is one platform event the test sends.
type platformEvent struct {
	id    string
	group int
	at    time.Time
	user  int // -1 unassigns
	acked atomic.Bool
}

func (e *platformEvent) body() []byte {
	assignee := "null"
	if e.user >= 0 {
		assignee = fmt.Sprintf(`"u%d"`, e.user)
	}
	return []byte(fmt.Sprintf(`{"id":%q,"type":"group.assigned","group":"e%d","assignee":%s,"occurred_at":%q}`,
		e.id, e.group, assignee, e.at.UTC().Format(time.RFC3339Nano)))
}

// jiraName is the Jira user the platform user u<n> is: the one whose
// email is u<n>'s verified one.
func jiraName(user int) string { return fmt.Sprintf("ju%d", user) }

// pluginCarriesEvents reports whether the plugin exports
// handle_platform_event. Until it does (the export is the plugin's, ABI
// 1.4), events would only fail and be retried, and the crash test leaves
// them out, saying so in its log.
func pluginCarriesEvents(t testing.TB, plugin string) bool {
	t.Helper()
	wasm, err := os.ReadFile(plugin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The interpreter only decodes and validates: no compilation.
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	m, err := r.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	_, ok := m.ExportedFunctions()[abi.ExportHandlePlatformEvent]
	return ok
}

// crashJira is the Jira the events are carried to: user search by email,
// an issue's assignee, and the assignee's PUT, which it records. It
// checks no signature (the webhooks' part of the test reaches no Jira,
// and testharness/fakejira checks OAuth elsewhere); it is in this process,
// so it outlives every host killed.
type crashJira struct {
	srv      *httptest.Server
	mu       sync.Mutex
	assignee map[string]string   // issue key → Jira name, "" unassigned
	writes   map[string][]string // issue key → each assignee PUT, in order
}

func startCrashJira() *crashJira {
	j := &crashJira{assignee: map[string]string{}, writes: map[string][]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rest/api/2/user/search", func(w http.ResponseWriter, r *http.Request) {
		users := []map[string]any{}
		var n int
		if _, err := fmt.Sscanf(r.URL.Query().Get("username"), "u%d@example.com", &n); err == nil {
			users = append(users, map[string]any{"name": jiraName(n), "key": fmt.Sprintf("JIRAUSER%d", 20000+n),
				"emailAddress": fmt.Sprintf("u%d@example.com", n), "active": true})
		}
		writeCrashJSON(w, http.StatusOK, users)
	})
	mux.HandleFunc("GET /rest/api/2/issue/{key}", func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("key")
		j.mu.Lock()
		name := j.assignee[key]
		j.mu.Unlock()
		var assignee any
		if name != "" {
			var n int
			fmt.Sscanf(name, "ju%d", &n)
			assignee = map[string]any{"name": name, "key": fmt.Sprintf("JIRAUSER%d", 20000+n), "emailAddress": fmt.Sprintf("u%d@example.com", n)}
		}
		writeCrashJSON(w, http.StatusOK, map[string]any{"id": "3" + strings.TrimPrefix(key, "EVT-"), "key": key, "fields": map[string]any{
			"assignee": assignee, "status": map[string]any{"id": "1", "name": "Open", "statusCategory": map[string]any{"key": "new"}}}})
	})
	mux.HandleFunc("PUT /rest/api/2/issue/{key}/assignee", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Name *string `json:"name"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeCrashJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{err.Error()}})
			return
		}
		name := ""
		if body.Name != nil {
			name = *body.Name
		}
		key := r.PathValue("key")
		j.mu.Lock()
		j.assignee[key] = name
		j.writes[key] = append(j.writes[key], name)
		j.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	j.srv = httptest.NewServer(mux)
	return j
}

func writeCrashJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// seedCrashEvents adds the event groups, linked to EVT-n through jira1,
// and points jira1 at the Jira with credentials to sign with and
// outbound_assignee on.
func seedCrashEvents(t testing.TB, db string, fp *fakeplatform.Server, jira *crashJira) {
	ctx := context.Background()
	st, err := openCrashStore(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data := platform.Data{}
	for g := 0; g < crashEventGroups; g++ {
		id := fmt.Sprintf("e%d", g)
		data.Groups = append(data.Groups, platform.Group{ID: id, Project: "backend"})
		data.Links = append(data.Links, platform.Link{Group: id, Installation: "jira1", IssueKey: fmt.Sprintf("EVT-%d", g)})
	}
	if fp != nil {
		err = fp.Load(&data)
	} else {
		err = st.ImportData(ctx, &data)
	}
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	in, err := st.Installation(ctx, "jira1")
	if err != nil {
		t.Fatal(err)
	}
	in.BaseURL, in.AccessToken = jira.srv.URL, "crash-access-token"
	in.PrivateKeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	in.Organizations = []store.InstallationOrg{{ID: "acme", InboundAssignee: true, OutboundAssignee: true}}
	if err := st.PutInstallation(ctx, in); err != nil {
		t.Fatal(err)
	}
}

// crashEvents makes the events: per group, increasing times, a random
// user or none each.
func crashEvents(pick func(int) int) []*platformEvent {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var out []*platformEvent
	for i := 0; i < crashEventGroups*crashEventsPerGroup; i++ {
		out = append(out, &platformEvent{id: fmt.Sprintf("crash-%d", i), group: i % crashEventGroups,
			at: base.Add(time.Duration(i) * time.Second), user: pick(crashUsers+1) - 1})
	}
	return out
}

// verifyCrashEvents checks the events against the deliveries stored and
// the Jira's writes: every acknowledged event is stored, one delivery,
// settled done or stale exactly once; each issue ends with the assignee
// of its group's newest event; no write repeats the one before it (the
// plugin reads the issue first, so a repeat is an event applied twice, or
// two of a group run at once), and an issue has at most as many writes as
// its group has deliveries that may have written: the done ones, and the
// stale ones whose host was killed during an attempt (it may have written
// before a newer event took the group and made it stale; in order).
func verifyCrashEvents(t *testing.T, st *store.Store, events []*platformEvent, stored []store.Delivery, jira *crashJira) {
	ctx := context.Background()
	byID := map[string]*platformEvent{}
	for _, e := range events {
		byID[e.id] = e
	}
	seen := map[string]bool{}
	wrote := map[string]int{} // by group: deliveries that may have written
	for _, d := range stored {
		full, err := st.Delivery(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		var body abi.PlatformEvent
		if err := json.Unmarshal(full.Body, &body); err != nil {
			t.Fatalf("event delivery %d: body %q: %v", d.ID, full.Body, err)
		}
		e := byID[body.ID]
		switch {
		case e == nil:
			t.Errorf("event delivery %d carries event %q nobody sent", d.ID, body.ID)
			continue
		case seen[body.ID]:
			t.Errorf("event %s stored twice", body.ID)
		}
		seen[body.ID] = true
		if d.Status != store.DeliveryDone && d.Status != store.DeliveryStale {
			t.Errorf("event delivery %d (%s) ended %s: %s", d.ID, body.ID, d.Status, d.Error)
		}
		if recorded := settledOnce(t, st, d); d.Status == store.DeliveryDone || d.Attempts > recorded {
			wrote[body.Group]++
		}
	}
	newest := map[int]*platformEvent{}
	for _, e := range events {
		if e.acked.Load() && !seen[e.id] {
			t.Errorf("acknowledged event %s is not stored", e.id)
		}
		if n := newest[e.group]; n == nil || e.at.After(n.at) {
			newest[e.group] = e
		}
	}
	jira.mu.Lock()
	defer jira.mu.Unlock()
	writes := 0
	for g, e := range newest {
		key := fmt.Sprintf("EVT-%d", g)
		want := ""
		if e.user >= 0 {
			want = jiraName(e.user)
		}
		if got := jira.assignee[key]; got != want {
			t.Errorf("%s: Jira assignee %q, want %q (newest event %s)", key, got, want, e.id)
		}
		ws := jira.writes[key]
		writes += len(ws)
		for i := 1; i < len(ws); i++ {
			if ws[i] == ws[i-1] {
				t.Errorf("%s: write %d repeats %q: an event applied twice, or two run at once (writes %q)", key, i, ws[i], ws)
			}
		}
		if n := wrote[fmt.Sprintf("e%d", g)]; len(ws) > n {
			t.Errorf("%s: %d writes for %d events that may have written", key, len(ws), n)
		}
	}
	t.Logf("platform events: %d sent, %d stored, %d Jira writes", len(events), len(seen), writes)
}
