package scenario

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeScenario writes text as a scenario file and loads it.
func writeScenario(t *testing.T, text string) (*Scenario, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.json")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

// twoWay is a valid HTTP-level two-way scenario; tests replace parts.
const twoWay = `{"name":"x","level":"http",
 "platform":{"installations":[{"id":"jira1","external_id":"e","webhook_secret":"s",
   "organizations":[{"id":"acme","outbound_assignee":true,"outbound_status":true,
     "status_mappings":[{"jira_project":"APP","resolve_status":"5","unresolve_status":"4"}]}]}]},
 "jira":{"issues":[{"key":"APP-1","assignee":null,"status":"1","refuse_assign":403}],
   "transitions":[{"id":"5","name":"Resolve","from":["1"],"to":"5"}],"echo":true},
 "deliveries":[{"installation":"jira1","payload":{},"expect_status":200}],
 "events":[
   {"event":{"id":"e1","type":"group.assigned","group":"g1","assignee":"alice","occurred_at":"2026-11-30T04:00:00Z"},"expect_status":202,"expect_summary":{"duplicate":false}},
   {"after":1,"jira_edit":{"issue":"APP-1","assignee":null,"status":"5"}},
   {"after":1,"jira_edit":{"issue":"APP-1","assignee":"bob"}},
   {"after":1,"replay":1,"expect_status":200,"jira_down":false,"jira_status":0}],
 "expect":{"groups":[],
   "deliveries":[{"status":"done","event":"group.assigned","issue_id":"group:g1:assignee","summary":{"outcome":"synced","issues":[{"key":"APP-1"}]},"error":""}],
   "jira":{"issues":[{"key":"APP-1","assignee":"alice","status":"5"}],
     "writes":[{"issue":"APP-1","field":"assignee","value":"alice","status":204},{"issue":"APP-1","field":"status","value":"5","transition":"5"}],
     "user_searches":1}}}`

func TestLoadTwoWay(t *testing.T) {
	sc, err := writeScenario(t, twoWay)
	if err != nil {
		t.Fatal(err)
	}
	o := sc.Platform.Installations[0].Organizations[0]
	if !o.OutboundAssignee || !o.OutboundStatus || len(o.StatusMappings) != 1 || o.StatusMappings[0].ResolveStatus != "5" {
		t.Errorf("organization settings %+v", o)
	}
	if is := sc.Jira.Issues[0]; is.Assignee != nil || is.Status != "1" || is.RefuseAssign != 403 || !sc.Jira.Echo ||
		sc.Jira.Transitions[0].From[0] != "1" {
		t.Errorf("jira %+v", sc.Jira)
	}
	if len(sc.Events) != 4 || sc.Events[1].After != 1 || sc.Events[3].Replay != 1 {
		t.Fatalf("events %+v", sc.Events)
	}
	for i, want := range []*string{new(string), ptr("bob")} {
		got, err := sc.Events[i+1].JiraEdit.assignee()
		if err != nil || got == nil || *got != *want {
			t.Errorf("edit %d assignee %v (%v), want %q", i+1, got, err, *want)
		}
	}
	if w := sc.Expect.Jira; len(w.Writes) != 2 || *w.UserSearches != 1 || w.Issues[0].Assignee == nil {
		t.Errorf("expect.jira %+v", w)
	}
	t.Run("edit leaving the assignee", func(t *testing.T) {
		got, err := JiraEdit{Issue: "APP-1", Status: "3"}.assignee()
		if err != nil || got != nil {
			t.Errorf("assignee %v, %v; want nil", got, err)
		}
	})
}

func ptr(s string) *string { return &s }

func TestLoadRefusesBadTwoWay(t *testing.T) {
	tests := []struct{ name, old, new, says string }{
		{"two kinds in one step", `{"after":1,"replay":1,`, `{"after":1,"replay":1,"jira_edit":{"issue":"APP-1"},`, "exactly one of"},
		{"no kind", `{"after":1,"replay":1,`, `{"after":1,`, "exactly one of"},
		{"after past the deliveries", `{"after":1,"replay":1,`, `{"after":2,"replay":1,`, "after 2"},
		{"negative replay", `"replay":1,`, `"replay":-1,`, "replay -1"},
		{"event not an object", `"event":{"id":"e1","type":"group.assigned","group":"g1","assignee":"alice","occurred_at":"2026-11-30T04:00:00Z"}`, `"event":"e1"`, "JSON object"},
		{"event without status", `,"expect_status":202,"expect_summary":{"duplicate":false}}`, `}`, "no expect_status"},
		{"edit without issue", `"jira_edit":{"issue":"APP-1","assignee":"bob"}`, `"jira_edit":{"assignee":"bob"}`, "needs an issue"},
		{"edit with a status", `"jira_edit":{"issue":"APP-1","assignee":"bob"}}`, `"jira_edit":{"issue":"APP-1","assignee":"bob"},"expect_status":200}`, "no HTTP answer"},
		{"edit with a bad assignee", `"assignee":"bob"}`, `"assignee":7}`, "user name or null"},
		{"misspelt issue key", `"refuse_assign":403`, `"refuse_asign":403`, "unknown field"},
		{"misspelt step key", `{"after":1,"replay":1,`, `{"afterr":1,"replay":1,`, "unknown field"},
		{"misspelt expectation", `"user_searches":1`, `"user_search":1`, "unknown field"},
		{"bad write field", `"field":"assignee"`, `"field":"summary"`, "want \"assignee\" or \"status\""},
		{"plugin level with the echo", `"level":"http"`, `"level":"plugin"`, "echo is HTTP-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(twoWay, tt.old) {
				t.Fatalf("%q is not in the base scenario", tt.old)
			}
			_, err := writeScenario(t, strings.Replace(twoWay, tt.old, tt.new, 1))
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %v, want one saying %q", err, tt.says)
			}
		})
	}
}

// TestPluginLevelRefusesTwoWay: a plugin-level scenario may hold the
// two-way parts the conformance kit carries (platform events answered
// 202, Jira's issues and workflow, outbound settings, expectations on
// Jira's side and on the stored records), and each part the kit does not
// carry alone makes it invalid: its checks would pass unchecked.
func TestPluginLevelRefusesTwoWay(t *testing.T) {
	base := `{"name":"x","level":"plugin",
	 "platform":{"installations":[{"id":"jira1","external_id":"e","webhook_secret":"s","organizations":[{"id":"acme"%s}]}]},
	 "jira":{%s},
	 "deliveries":[{"installation":"jira1","payload":{},"expect_status":200}],
	 "events":[%s],
	 "expect":{"groups":[]%s}}`
	const event = `{"event":{"id":"e1","type":"group.resolved","group":"g1","occurred_at":"2026-11-30T03:00:00Z"},"expect_status":202`
	tests := []struct{ name, org, jira, events, expect, says string }{
		{"plain plugin-level is fine", "", "", "", "", ""},
		{"outbound settings", `,"outbound_assignee":true,"outbound_status":true,"status_mappings":[]`, "", "", "", ""},
		{"jira issues and workflow", "", `"issues":[{"key":"APP-1","assignee":null}],"transitions":[{"id":"5","to":"5"}]`, "", "", ""},
		{"platform event answered 202", "", "", event + `}`, "", ""},
		{"event after the delivery", "", "", event + `,"after":1}`, "", ""},
		{"expect jira", "", "", "", `,"jira":{"writes":[]}`, ""},
		{"stored summary, event, issue id", "", "", "", `,"deliveries":[{"status":"done","event":"jira:issue_updated","issue_id":"1","summary":{}}]`, ""},
		{"stored error", "", "", "", `,"deliveries":[{"status":"failed","error":"x"}]`, ""},
		{"jira echo", "", `"echo":true`, "", "", "echo"},
		{"jira edit", "", "", `{"jira_edit":{"issue":"APP-1","status":"5"}}`, "", "jira_edit and replay"},
		{"replay", "", "", `{"replay":1,"expect_status":202}`, "", "jira_edit and replay"},
		{"event refused by the endpoint", "", "", strings.Replace(event, `"expect_status":202`, `"expect_status":400`, 1) + `}`, "", "only an event answered 202"},
		{"event answered as a duplicate", "", "", strings.Replace(event, `"expect_status":202`, `"expect_status":200`, 1) + `}`, "", "only an event answered 202"},
		{"event's answer checked", "", "", event + `,"expect_summary":{"duplicate":false}}`, "", "expect_summary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := base
			for _, part := range []string{tt.org, tt.jira, tt.events, tt.expect} {
				text = strings.Replace(text, "%s", part, 1)
			}
			_, err := writeScenario(t, text)
			switch {
			case tt.says == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.says != "" && (err == nil || !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), `mark the scenario "http"`)):
				t.Errorf("error %v, want one saying %q", err, tt.says)
			}
		})
	}
}

func TestMatchStored(t *testing.T) {
	stored := `{"outcome":"synced","group":"g1","type":"group.assigned","issues":[{"key":"APP-1","action":"assigned","assignee":"alice"},{"key":"APP-2","action":"skipped","reason":"no_jira_user"}]}`
	tests := []struct {
		name, want string
		diffs      int
	}{
		{"top-level keys only", `{"outcome":"synced"}`, 0},
		{"nested keys only", `{"issues":[{"key":"APP-1","action":"assigned"},{"reason":"no_jira_user"}]}`, 0},
		{"wrong nested value", `{"issues":[{"action":"unchanged"},{}]}`, 1},
		{"wrong length", `{"issues":[{"key":"APP-1"}]}`, 1},
		{"missing key", `{"reason":"echo"}`, 1},
		{"object for a string", `{"group":{"id":"g1"}}`, 1},
		{"two differences", `{"outcome":"ignored","type":"group.resolved"}`, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want map[string]any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if d := matchStored(stored, want); len(d) != tt.diffs {
				t.Errorf("differences %q, want %d", d, tt.diffs)
			}
		})
	}
	if d := matchStored("", map[string]any{}); len(d) != 1 || d[0] != "no summary stored" {
		t.Errorf("empty summary: %q", d)
	}
}

// echoEdit is a scenario that runs on the host without platform events: a
// person assigns APP-1 in Jira, the simulated Jira's echo delivers the
// webhook, and inbound sync assigns the group. Then a webhook sent while
// Jira is down waits for a retry, and a replay step applies it.
const echoEdit = `{"name":"edit echoed","level":"http",
 "platform":{"organizations":[{"id":"acme"}],"projects":[{"id":"backend","organization":"acme"}],
  "users":[{"id":"alice","emails":[{"email":"alice@example.com","verified":true}],"projects":["backend"]},
           {"id":"bob","emails":[{"email":"bob@example.com","verified":true}],"projects":["backend"]}],
  "groups":[{"id":"g1","project":"backend","assignee":null}],
  "installations":[{"id":"jira1","external_id":"jira.example.com:jirasync","webhook_secret":"s3cret","organizations":[{"id":"acme"}]}],
  "links":[{"group":"g1","installation":"jira1","issue_key":"APP-1"}]},
 "jira":{"users":[{"name":"alice","key":"JIRAUSER10000","emailAddress":"alice@example.com","displayName":"Alice"},
                  {"name":"bob","key":"JIRAUSER10001","emailAddress":"bob@example.com","displayName":"Bob Builder"}],
  "issues":[{"key":"APP-1","id":"10042","assignee":null}],"echo":true},
 "deliveries":[{"installation":"jira1","jira_down":true,"payload":PAYLOAD,"expect_status":503}],
 "events":[{"after":1,"replay":1,"jira_down":false,"expect_status":200,"expect_summary":{"outcome":"synced","assigned":1}},
           {"after":1,"jira_edit":{"issue":"APP-1","assignee":"alice"}}],
 "expect":{"groups":[{"id":"g1","assignee":"GROUP"}],
  "deliveries":[{"status":"done","attempts":2,"issue_key":"APP-1","summary":{"groups":[{"id":"g1","assignee":"bob"}]}},
                {"status":"done","event":"jira:issue_updated","issue_key":"APP-1","summary":{"outcome":"synced","assigned":1,"groups":[{"id":"g1","assignee":"alice"}]}}],
  "jira":{"issues":[{"key":"APP-1","assignee":"ISSUE","status":"1"}],"writes":[],"user_searches":0}}}`

// TestRunnerTwoWaySteps runs echoEdit through the real host (native
// engine), and again with each expectation made wrong, which must fail
// with the difference named: the new checks are not vacuous.
func TestRunnerTwoWaySteps(t *testing.T) {
	payload, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "payloads", "assigned-no-email.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		old, new string
		fails    []string
	}{
		{name: "as expected"},
		{name: "group and issue", old: `"GROUP"`, new: `"bob"`,
			fails: []string{"group g1: assignee alice, want bob"}},
		{name: "Jira issue", old: `"assignee":"ISSUE","status":"1"`, new: `"assignee":null,"status":"5"`,
			fails: []string{"Jira issue APP-1: assignee alice, want null", "Jira issue APP-1: status 1, want 5"}},
		{name: "writes", old: `"writes":[]`, new: `"writes":[{"issue":"APP-1","field":"assignee","value":"alice"}]`,
			fails: []string{"Jira received 0 writes [], want 1"}},
		{name: "user searches", old: `"user_searches":0`, new: `"user_searches":2`,
			fails: []string{"Jira user searches: 0, want 2"}},
		{name: "stored summary", old: `"summary":{"groups":[{"id":"g1","assignee":"bob"}]}`, new: `"summary":{"groups":[{"id":"g1","assignee":"carol"}]}`,
			fails: []string{`stored delivery 1: summary.groups[0].assignee = "bob", want "carol"`}},
		{name: "stored event", old: `"event":"jira:issue_updated"`, new: `"event":"group.assigned"`,
			fails: []string{"stored delivery 2: event jira:issue_updated, want group.assigned"}},
		{name: "replay answer", old: `"expect_status":200`, new: `"expect_status":202`,
			fails: []string{"event 1: status 200, want 202"}},
	}
	r := &Runner{Engine: "native"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := echoEdit
			if tt.old != "" {
				if !strings.Contains(text, tt.old) {
					t.Fatalf("%s is not in the scenario", tt.old)
				}
				text = strings.Replace(text, tt.old, tt.new, 1)
			}
			text = strings.NewReplacer("PAYLOAD", string(payload), "GROUP", "alice", "ISSUE", "alice").Replace(text)
			sc, err := writeScenario(t, text)
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Run(t.Context(), sc)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Failures) != len(tt.fails) {
				t.Fatalf("failures %q, want %q", res.Failures, tt.fails)
			}
			for i, f := range tt.fails {
				if !strings.HasPrefix(res.Failures[i], f) {
					t.Errorf("failure %q, want %q", res.Failures[i], f)
				}
			}
		})
	}
}
