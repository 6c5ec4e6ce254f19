package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrintEndpoints(t *testing.T) {
	const base = "http://127.0.0.1:8090"
	tests := []struct {
		name     string
		o        options
		want     []string
		dontWant []string
	}{
		{"Jira 9", options{version: "9.12.2", consumerKey: "k"},
			[]string{"consumer key     k", base + "/plugins/servlet/oauth/request-token", base + "/plugins/servlet/oauth/authorize",
				base + "/plugins/servlet/oauth/access-token", base + "/rest/webhooks/1.0/webhook\n"},
			[]string{"jira-webhook", "without the dance"}},
		{"Jira 10", options{version: "10.3.1", consumerKey: "k", token: "T"},
			[]string{base + "/rest/jira-webhook/1.0/webhooks", `access token "T" is accepted without the dance`},
			[]string{"/rest/webhooks/1.0"}},
		{"Jira 11 snapshot", options{version: "11-SNAPSHOT"}, []string{"jira-webhook", "no consumer"}, nil},
		{"Jira 8", options{version: "8.20.10"}, []string{"/rest/webhooks/1.0/webhook"}, []string{"jira-webhook"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			printEndpoints(&b, base, tt.o)
			out := b.String()
			if first, _, _ := strings.Cut(out, "\n"); first != base {
				t.Errorf("first line %q, want the base URL alone", first)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.dontWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestReadIssues(t *testing.T) {
	tests := []struct {
		name, text string
		want       int    // issues read
		err        string // in the error, "" for none
	}{
		{"issues", `[{"key":"APP-1","assignee":"alice","status":"3"},{"key":"APP-2","refuse_assign":403,"id":"10050"}]`, 2, ""},
		{"none", `[]`, 0, ""},
		{"misspelt field", `[{"key":"APP-1","asignee":"alice"}]`, 0, "unknown field"},
		{"not a list", `{"key":"APP-1"}`, 0, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "issues.json")
			if err := os.WriteFile(p, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readIssues(p)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("read %+v, %v; want %d issues", got, err, tt.want)
			}
		})
	}
	if got, err := readIssues(""); got != nil || err != nil {
		t.Errorf("no file: %v, %v", got, err)
	}
}
