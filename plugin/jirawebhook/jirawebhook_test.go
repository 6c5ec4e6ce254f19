package jirawebhook

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/plugin/abi"
)

// fakeJira answers by "METHOD path" and records the requests.
type fakeJira struct {
	answers map[string]abi.JiraResponse
	sent    []abi.JiraRequest
	logs    []string
}

func (f *fakeJira) JiraRequest(req abi.JiraRequest) (*abi.JiraResponse, error) {
	f.sent = append(f.sent, req)
	if r, ok := f.answers[req.Method+" "+req.Path]; ok {
		return &r, nil
	}
	return &abi.JiraResponse{Status: 404, Body: `{"errorMessages":["not found"]}`}, nil
}

func (f *fakeJira) Log(level, message string, _ map[string]any) {
	f.logs = append(f.logs, level+": "+message)
}

func TestRegister(t *testing.T) {
	jira9 := abi.JiraResponse{Status: 200, Body: `{"version":"9.12.2","versionNumbers":[9,12,2]}`}
	jira10 := abi.JiraResponse{Status: 200, Body: `{"version":"10.3.1","versionNumbers":[10,3,1]}`}
	tests := []struct {
		name     string
		answers  map[string]abi.JiraResponse
		previous *abi.WebhookRef
		want     *abi.WebhookRef
		wantCode abi.ErrorCode
		wantMsg  string
		deleted  string
	}{
		{name: "jira 9 legacy API", answers: map[string]abi.JiraResponse{
			"GET /rest/api/2/serverInfo":      jira9,
			"POST /rest/webhooks/1.0/webhook": {Status: 201, Body: `{"self":"https://jira.example.com/rest/webhooks/1.0/webhook/7"}`}},
			want: &abi.WebhookRef{API: abi.WebhookAPILegacy, ID: "7"}},
		{name: "jira 10 new API", answers: map[string]abi.JiraResponse{
			"GET /rest/api/2/serverInfo":           jira10,
			"POST /rest/jira-webhook/1.0/webhooks": {Status: 201, Body: `{"id":12,"name":"jirasync"}`}},
			want: &abi.WebhookRef{API: abi.WebhookAPIJira10, ID: "12"}},
		{name: "reinstall removes the previous webhook", answers: map[string]abi.JiraResponse{
			"GET /rest/api/2/serverInfo":          jira9,
			"POST /rest/webhooks/1.0/webhook":     {Status: 201, Body: `{"self":"https://jira.example.com/rest/webhooks/1.0/webhook/8"}`},
			"DELETE /rest/webhooks/1.0/webhook/7": {Status: 204}},
			previous: &abi.WebhookRef{API: abi.WebhookAPILegacy, ID: "7"},
			want:     &abi.WebhookRef{API: abi.WebhookAPILegacy, ID: "8"}, deleted: "/rest/webhooks/1.0/webhook/7"},
		{name: "no permission", answers: map[string]abi.JiraResponse{
			"GET /rest/api/2/serverInfo":      jira9,
			"POST /rest/webhooks/1.0/webhook": {Status: 403, Body: `{"errorMessages":["You do not have permission to create WebHook"],"errors":{}}`}},
			wantCode: abi.CodeJiraRejected, wantMsg: "You do not have permission to create WebHook"},
		{name: "serverInfo refused", answers: map[string]abi.JiraResponse{
			"GET /rest/api/2/serverInfo": {Status: 401, Body: "oauth_problem=token_rejected"}},
			wantCode: abi.CodeJiraRejected, wantMsg: "oauth_problem=token_rejected"},
		{name: "jira failing", answers: map[string]abi.JiraResponse{
			"GET /rest/api/2/serverInfo": {Status: 503, Body: "down"}},
			wantCode: abi.CodeUnavailable},
		{name: "no version", answers: map[string]abi.JiraResponse{
			"GET /rest/api/2/serverInfo": {Status: 200, Body: `{}`}},
			wantCode: abi.CodeJiraRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &fakeJira{answers: tt.answers}
			resp, err := Register(j, abi.RegisterWebhookRequest{Name: "jirasync", Previous: tt.previous})
			if tt.wantCode != "" {
				var ae *abi.Error
				if !errors.As(err, &ae) || ae.Code != tt.wantCode || !strings.Contains(ae.Message, tt.wantMsg) {
					t.Fatalf("Register error = %v, want %s containing %q", err, tt.wantCode, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *resp.Webhook != *tt.want {
				t.Errorf("registered %+v, want %+v", resp.Webhook, tt.want)
			}
			post := j.sent[1]
			if !post.Substitute || !strings.Contains(post.Body, abi.PlaceholderWebhookURL) {
				t.Errorf("registration body %q without the URL placeholder or substitution", post.Body)
			}
			if tt.want.API == abi.WebhookAPIJira10 {
				var b struct {
					Configuration map[string]string `json:"configuration"`
				}
				json.Unmarshal([]byte(post.Body), &b)
				if b.Configuration["SECRET"] != abi.PlaceholderWebhookSecret || b.Configuration["EXCLUDE_BODY"] != "false" {
					t.Errorf("Jira 10 configuration = %v", b.Configuration)
				}
			}
			if tt.deleted != "" && (len(j.sent) != 3 || j.sent[2].Method != "DELETE" || j.sent[2].Path != tt.deleted) {
				t.Errorf("requests %+v, want a DELETE of %s last", j.sent, tt.deleted)
			}
		})
	}
}

func TestUnregister(t *testing.T) {
	j := &fakeJira{answers: map[string]abi.JiraResponse{"DELETE /rest/jira-webhook/1.0/webhooks/3": {Status: 204}}}
	if err := Unregister(j, abi.WebhookRef{API: abi.WebhookAPIJira10, ID: "3"}); err != nil {
		t.Fatal(err)
	}
	if err := Unregister(j, abi.WebhookRef{API: abi.WebhookAPILegacy, ID: "9"}); err != nil {
		t.Errorf("a webhook already gone (404): %v", err)
	}
	for _, bad := range []abi.WebhookRef{{API: "v3", ID: "1"}, {API: abi.WebhookAPILegacy, ID: "../x"}, {API: abi.WebhookAPILegacy}} {
		if err := Unregister(j, bad); err == nil {
			t.Errorf("Unregister(%+v) accepted", bad)
		}
	}
}
