package scenario

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/webhook"
)

// fakeAdapterEnv makes this test binary a scripted adapter (see
// TestMain): the kit's checks are proved against answers that are wrong
// in one known way each, with no plugin involved.
const fakeAdapterEnv = "JIRASYNC_FAKE_ADAPTER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeAdapterEnv); mode != "" {
		os.Exit(fakeAdapter(mode))
	}
	os.Exit(m.Run())
}

// fakeAdapter answers the protocol for assign-email-in-payload.json: right
// in mode "good", wrong in one way in every other mode.
func fakeAdapter(mode string) int {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, 8<<20)
	enc := json.NewEncoder(os.Stdout)
	var keyPEM string
	var outbound bool
	alice := "alice"
	for in.Scan() {
		var req struct {
			Op            string                `json:"op"`
			Protocol      int                   `json:"protocol"`
			Installations []AdapterInstallation `json:"installations"`
			Installation  string                `json:"installation"`
			Export        string                `json:"export"`
			Input         []byte                `json:"input"`
		}
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		reply := AdapterReply{OK: true}
		switch req.Op {
		case "load":
			keyPEM = req.Installations[0].PrivateKeyPEM
			outbound = req.Protocol == 2 && req.Installations[0].Organizations[0].OutboundAssignee
		case "call":
			switch req.Export {
			case abi.ExportHandlePlatformEvent:
				// events/assign-outbound.json's event, as the host
				// stores it, bound to its installation, which load
				// said carries assignments out.
				const want = `{"id":"evt-1","type":"group.assigned","group":"g1","assignee":"alice","occurred_at":"2026-11-30T03:00:00Z"}`
				if string(req.Input) != want || req.Installation != "jira1" || !outbound {
					reply = AdapterReply{Error: fmt.Sprintf("event %s for %q (outbound %v), want %s for jira1", req.Input, req.Installation, outbound, want)}
					break
				}
				// Claims the write without making it: the kit must see
				// Jira's side unchanged.
				action := "assigned"
				if mode == "event-wrong-summary" {
					action = "unchanged"
				}
				sum := abi.EventSummary{Outcome: abi.OutcomeSynced, Group: "g1", Type: abi.EventGroupAssigned,
					Issues: []abi.IssueResult{{Key: "APP-1", Action: action, Assignee: "alice"}}}
				reply.Output, _ = json.Marshal(abi.EventResponse{Summary: &sum})
			case abi.ExportInspectDelivery:
				insp := webhook.Inspect(req.Input)
				reply.Output, _ = json.Marshal(abi.InspectResponse{Inspection: &insp})
			default:
				sum := abi.Summary{Outcome: abi.OutcomeSynced, IssueKey: "APP-1", Email: "alice@example.com", Assigned: 1,
					Groups: []abi.GroupResult{{ID: "g1", Organization: "acme", Action: "assigned", Assignee: &alice}}}
				reply.Output, _ = json.Marshal(abi.HandleResponse{Summary: &sum})
				switch mode {
				case "bad-output":
					reply.Output = []byte(`{"summary":{"outcome":"synced"}}`)
				case "error-in-output":
					reply.Output = []byte(`{"error":{"code":"unavailable","message":"jira unreachable"}}`)
				case "error-not-abi":
					reply.Output, reply.ExportError = nil, "boom"
				case "fault":
					reply.Output, reply.Fault = nil, "wasm trap: out of bounds memory access"
				}
			}
		case "groups":
			reply.Groups = []AdapterGroup{{ID: "g1", Assignee: &alice}}
			if mode == "wrong-group" {
				reply.Groups[0].Assignee = nil
			}
		case "state":
			reply.State = map[string]map[string]string{"jira1": {"jira-user:alice": "alice@example.com"}}
			if mode == "secret-in-state" {
				reply.State["jira1"]["key"] = keyPEM
			}
		case "close":
		default:
			reply = AdapterReply{Error: "unknown op " + req.Op}
		}
		if err := enc.Encode(reply); err != nil {
			return 1
		}
		if req.Op == "close" {
			return 0
		}
	}
	return 0
}

// TestKitChecks proves that the kit fails a host for each kind of wrong
// answer, and passes it when every answer is right. With a platform event
// (events/assign-outbound.json) the scripted adapter refuses any call but
// the one protocol 2 makes (the outbound settings in load, the event as
// the host stores it through handle_platform_event, bound to the
// installation); it claims a write it never made, so the kit must fail
// it on Jira's side (issue, writes, user searches), and on the stored
// record when its summary differs from the scenario's.
func TestKitChecks(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const webhookFile, eventFile = "assign-email-in-payload.json", "events/assign-outbound.json"
	jiraSide := []string{"Jira received 0 writes [], want 1", "Jira issue APP-1: assignee null, want alice", "Jira user searches: 0, want 1"}
	tests := []struct {
		file, mode string
		want       []string // substrings of the failures, in order; none: passes
		absent     string   // a substring no failure may have
	}{
		{eventFile, "event-no-write", jiraSide, "stored delivery"},
		{eventFile, "event-wrong-summary", append([]string{`stored delivery 1: summary.issues[0].action = "unchanged", want "assigned"`}, jiraSide...), ""},
		{webhookFile, "good", nil, ""},
		{webhookFile, "wrong-group", []string{"group g1: assignee null, want alice"}, ""},
		{webhookFile, "secret-in-state", []string{`state jira1: key "key" holds a secret of the host`}, ""},
		{webhookFile, "bad-output", []string{"handle_issue_updated output", "summary has no \"issue_key\""}, ""},
		{webhookFile, "error-in-output", []string{"missing property 'summary'", "status 503, want 200"}, ""},
		{webhookFile, "error-not-abi", []string{"the export's error is not an ABI error", "status 503, want 200"}, ""},
		{webhookFile, "fault", []string{"status 503, want 200"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			sc, err := Load(filepath.Join("..", "..", "fixtures", "scenarios", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			t.Setenv(fakeAdapterEnv, tt.mode)
			k := &Kit{Adapter: []string{self}, PluginPath: "unused.wasm"}
			res, err := k.Run(context.Background(), sc)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if !res.Passed() {
					t.Fatalf("failures: %q", res.Failures)
				}
				return
			}
			all := strings.Join(res.Failures, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("failures %q do not mention %q", res.Failures, w)
				}
			}
			if tt.absent != "" && strings.Contains(all, tt.absent) {
				t.Errorf("failures %q mention %q", res.Failures, tt.absent)
			}
		})
	}
}

// TestKitRefusesHTTPLevel: the kit refuses to run what needs the host's
// pipeline rather than guess: an HTTP-level scenario, and a plugin-level
// one whose deliveries repeat a Jira event (deduplication).
func TestKitRefusesHTTPLevel(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeAdapterEnv, "good")
	dir := filepath.Join("..", "..", "fixtures", "scenarios")
	dup, err := Load(filepath.Join(dir, "assign-email-in-payload.json"))
	if err != nil {
		t.Fatal(err)
	}
	dup.Deliveries = append(dup.Deliveries, dup.Deliveries[0])
	httpLevel, err := Load(filepath.Join(dir, "duplicate-delivery-applied-once.json"))
	if err != nil {
		t.Fatal(err)
	}
	// An event sent again (the endpoint's deduplication), and one older
	// than the group's last (the pipeline's order: stale).
	event := func(edit func(e map[string]any)) *Scenario {
		sc, err := Load(filepath.Join(dir, "events", "assign-outbound.json"))
		if err != nil {
			t.Fatal(err)
		}
		var e map[string]any
		json.Unmarshal(sc.Events[0].Event, &e)
		edit(e)
		again := sc.Events[0]
		again.Event, _ = json.Marshal(e)
		sc.Events = append(sc.Events, again)
		return sc
	}
	repeated := event(func(map[string]any) {})
	older := event(func(e map[string]any) { e["id"], e["occurred_at"] = "evt-0", "2026-11-30T02:59:59Z" })
	for _, tt := range []struct {
		sc   *Scenario
		want string
	}{
		{httpLevel, "http-level"},
		{dup, "repeats delivery 1"},
		{repeated, "event 2 repeats event 1 (id evt-1)"},
		{older, "event 2 is older than one already carried for that field of group g1"},
	} {
		k := &Kit{Adapter: []string{self}, PluginPath: "unused.wasm"}
		_, err := k.Run(context.Background(), tt.sc)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one saying %q", tt.sc.Name, err, tt.want)
		}
	}
}

// TestLoadLevel: the level is required, and a plugin-level delivery may
// not use what only the endpoint does.
func TestLoadLevel(t *testing.T) {
	base := `{"name": "n", "platform": {}, "expect": {}, %s "deliveries": [{%s "body": "{}", "expect_status": 200}]}`
	tests := []struct {
		level, delivery, want string
	}{
		{`"level": "plugin",`, `"installation": "jira1",`, ""},
		{``, `"installation": "jira1",`, `level "": want "plugin" or "http"`},
		{`"level": "plugin",`, `"token": "x",`, "names its installation"},
		{`"level": "plugin",`, `"installation": "jira1", "method": "GET",`, "HTTP-level"},
		{`"level": "plugin",`, `"installation": "jira1", "expect_summary": {"duplicate": true},`, `"duplicate" is the pipeline's`},
		{`"level": "http",`, `"token": "x",`, ""},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "s.json")
		if err := os.WriteFile(path, fmt.Appendf(nil, base, tt.level, tt.delivery), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s %s: %v", tt.level, tt.delivery, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s %s: error %v, want one saying %q", tt.level, tt.delivery, err, tt.want)
		}
	}
}
