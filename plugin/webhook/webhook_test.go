package webhook

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    IssueUpdated
		wantErr string
	}{
		{
			name: "assignee change with email",
			body: `{"timestamp":1700000000123,"webhookEvent":"jira:issue_updated","issue":{"id":"10002","key":"APP-1",
				"fields":{"summary":"x","customfield_10100":{"value":"a"},"assignee":{"name":"alice","key":"JIRAUSER10000",
				"emailAddress":"alice@example.com","displayName":"Alice"}}},
				"changelog":{"id":"10431","items":[{"field":"status","fieldtype":"jira"},{"field":"assignee","fieldtype":"jira","from":"bob","to":"alice"}]}}`,
			want: IssueUpdated{Event: EventIssueUpdated, Timestamp: 1700000000123, IssueID: "10002", IssueKey: "APP-1",
				Assignee:    &User{Name: "alice", Key: "JIRAUSER10000", EmailAddress: "alice@example.com", DisplayName: "Alice"},
				ChangelogID: "10431", Items: []ChangelogItem{{Field: "status", FieldType: "jira"}, {Field: "assignee", FieldType: "jira", From: "bob", To: "alice"}}},
		},
		{
			name: "status change: the snapshot and the changelog's ids",
			body: `{"webhookEvent":"jira:issue_updated","issue":{"id":"1","key":"A-1","fields":{"status":{"self":"x","id":"10001",
				"name":"Done","statusCategory":{"id":3,"key":"done","colorName":"green"}}}},
				"changelog":{"id":"2","items":[{"field":"status","fieldtype":"jira","from":"3","fromString":"In Progress","to":10001,"toString":"Done"},
				{"field":"resolution","from":null,"to":"10000"}]}}`,
			want: IssueUpdated{Event: EventIssueUpdated, IssueID: "1", IssueKey: "A-1", ChangelogID: "2",
				Status: &Status{ID: "10001", Name: "Done", CategoryKey: "done"},
				Items:  []ChangelogItem{{Field: "status", FieldType: "jira", From: "3", To: "10001"}, {Field: "resolution", To: "10000"}}},
		},
		{
			name: "null assignee",
			body: `{"webhookEvent":"jira:issue_updated","issue":{"id":"1","key":"A-1","fields":{"assignee":null}},"changelog":{"id":"2","items":[{"field":"assignee"}]}}`,
			want: IssueUpdated{Event: EventIssueUpdated, IssueID: "1", IssueKey: "A-1", ChangelogID: "2", Items: []ChangelogItem{{Field: "assignee"}}},
		},
		{
			name: "numeric ids and string timestamp from replay tools",
			body: `{"timestamp":"1700000000000","webhookEvent":"jira:issue_updated","issue":{"id":10002,"key":"A-1"},"changelog":{"id":77,"items":[]}}`,
			want: IssueUpdated{Event: EventIssueUpdated, Timestamp: 1700000000000, IssueID: "10002", IssueKey: "A-1", ChangelogID: "77", Items: []ChangelogItem{}},
		},
		{name: "no changelog", body: `{"webhookEvent":"jira:issue_updated"}`, want: IssueUpdated{Event: EventIssueUpdated}},
		{name: "leading whitespace", body: " \n\t{}", want: IssueUpdated{Event: EventIssueUpdated}},
		// The URL names the event; senders other than Jira leave it out.
		{name: "no webhookEvent", body: `{"issue":{"id":"1","key":"A-1"},"changelog":{"id":"2","items":[{"field":"assignee"}]}}`,
			want: IssueUpdated{Event: EventIssueUpdated, IssueID: "1", IssueKey: "A-1", ChangelogID: "2", Items: []ChangelogItem{{Field: "assignee"}}}},
		{name: "null webhookEvent", body: `{"webhookEvent":null}`, want: IssueUpdated{Event: EventIssueUpdated}},
		{name: "other webhookEvent", body: `{"webhookEvent":"jira:issue_created"}`, want: IssueUpdated{Event: "jira:issue_created"}},
		{name: "empty webhookEvent", body: `{"webhookEvent":""}`, want: IssueUpdated{Event: ""}},
		{name: "webhookEvent of wrong type", body: `{"webhookEvent":1}`, wantErr: "webhookEvent is not a string"},
		{name: "empty", body: "  ", wantErr: "empty"},
		{name: "array", body: `[{"webhookEvent":"x"}]`, wantErr: "not a JSON object"},
		{name: "string", body: `"x"`, wantErr: "not a JSON object"},
		{name: "truncated", body: `{"webhookEvent":`, wantErr: "webhook body"},
		{name: "garbage", body: `not json`, wantErr: "not valid JSON"},
		{name: "assignee of wrong type", body: `{"issue":{"fields":{"assignee":"alice"}}}`, wantErr: "webhook body"},
		{name: "items of wrong type", body: `{"changelog":{"items":{}}}`, wantErr: "webhook body"},
		{name: "fractional timestamp", body: `{"timestamp":1.5}`, wantErr: "integer timestamp"},
		{name: "id of wrong type", body: `{"issue":{"id":{}}}`, wantErr: "string or number id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Event != tt.want.Event || got.Timestamp != tt.want.Timestamp || got.IssueID != tt.want.IssueID ||
				got.IssueKey != tt.want.IssueKey || got.ChangelogID != tt.want.ChangelogID || len(got.Items) != len(tt.want.Items) {
				t.Fatalf("Parse = %+v, want %+v", got, tt.want)
			}
			for i := range got.Items {
				if got.Items[i] != tt.want.Items[i] {
					t.Errorf("item %d = %+v, want %+v", i, got.Items[i], tt.want.Items[i])
				}
			}
			if (got.Assignee == nil) != (tt.want.Assignee == nil) || (got.Assignee != nil && *got.Assignee != *tt.want.Assignee) {
				t.Errorf("Assignee = %+v, want %+v", got.Assignee, tt.want.Assignee)
			}
		})
	}
}

func TestParseNotObjectIsDistinguishable(t *testing.T) {
	if _, err := Parse([]byte(`[]`)); !errors.Is(err, ErrNotObject) {
		t.Fatalf("Parse([]) = %v, want ErrNotObject", err)
	}
}

func TestChangesField(t *testing.T) {
	p := &IssueUpdated{Items: []ChangelogItem{{Field: "status"}, {Field: "Assignee"}}}
	if p.ChangesField("assignee") {
		t.Error("field names are case-sensitive in Jira changelogs; Assignee is not assignee")
	}
	p.Items = append(p.Items, ChangelogItem{Field: "assignee"})
	if !p.ChangesField("assignee") {
		t.Error("ChangesField(assignee) = false with an assignee item")
	}
}
