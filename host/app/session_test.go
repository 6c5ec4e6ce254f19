package app

import (
	"net/http"
	"strings"
	"testing"
)

// TestJSONAnswersAreNotSniffed: every JSON answer, refused or not, tells
// browsers not to guess another type from what an echoed value contains.
func TestJSONAnswersAreNotSniffed(t *testing.T) {
	a, srv, _ := newTestApp(t)
	for _, tt := range []struct {
		name, method, path, token string
		status                    int
	}{
		{"health", "GET", "/healthz", "", 200},
		{"admin without a token", "GET", DeliveriesPath, "", 401},
		{"admin with the token", "GET", DeliveriesPath, a.cfg.AdminToken, 200},
		{"unknown delivery", "GET", DeliveriesPath + "/x", a.cfg.AdminToken, 404},
		{"webhook with a bad token", "POST", WebhookPath + "nope", "", 400},
		{"webhook with GET", "GET", WebhookPath + "nope", "", 405},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader("{}"))
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s, want %d JSON", tt.name, resp.StatusCode, resp.Header.Get("Content-Type"), tt.status)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q, want nosniff", tt.name, got)
		}
	}
}

// TestSafeNext: a sign-in sends the browser on only to a page of this
// host. Each hostile case below is a way browsers have been led to
// another site; they all end on the setup page.
func TestSafeNext(t *testing.T) {
	tests := []struct{ next, want string }{
		{"/extensions/jira-server/deliveries?format=html", "/extensions/jira-server/deliveries?format=html"},
		{"/extensions/jira-server/installations/jira-1a2b", "/extensions/jira-server/installations/jira-1a2b"},
		{"/extensions/jira-server/deliveries?status=dead&format=html", "/extensions/jira-server/deliveries?format=html&status=dead"},
		{"/extensions/jira-server/setup/", "/extensions/jira-server/setup/"},
		{"/extensions/jira-server/a/../deliveries", "/extensions/jira-server/deliveries"},
		{"/extensions/jira-server/%2F%2Fevil.example", "/extensions/jira-server/evil.example"},
		{"/api/v1/installations", "/api/v1/installations"},
		{"", SetupPath},
		{"/", SetupPath},
		{"/metrics", SetupPath},
		{"/extensions/jira-server", SetupPath},
		{"/extensions/jira-serverx/", SetupPath},
		{"/extensions/jira-server/../../evil", SetupPath},
		{"/extensions/jira-server/%2e%2e/%2e%2e/evil", SetupPath},
		{"/api", SetupPath},
		{"//evil.example", SetupPath},
		{"///evil.example", SetupPath},
		{"/\t/evil.example", SetupPath},
		{"/\t\t/evil.example", SetupPath},
		{"/\n/evil.example", SetupPath},
		{"/\r/evil.example", SetupPath},
		{"/%09/evil.example", SetupPath},
		{"/%0a/evil.example", SetupPath},
		{"/extensions/jira-server/%09", SetupPath},
		{"/extensions/jira-server/\x7f", SetupPath},
		{"/extensions/jira-server/%7F", SetupPath},
		{"/extensions/jira-server/\x00", SetupPath},
		{"/extensions/jira-server/deliveries?x=%0d%0aLocation:%20http://evil.example", SetupPath},
		{"\t//evil.example", SetupPath},
		{"/\\evil.example", SetupPath},
		{"\\\\evil.example", SetupPath},
		{"/%5Cevil.example", SetupPath},
		{"/extensions/jira-server/%5C%5Cevil.example", SetupPath},
		{"https://evil.example/extensions/jira-server/", SetupPath},
		{"http:/extensions/jira-server/", SetupPath},
		{"javascript:alert(1)", SetupPath},
		{"data:text/html,<script>alert(1)</script>", SetupPath},
		{"//evil.example/extensions/jira-server/", SetupPath},
		{"/@evil.example", SetupPath},
		{"evil.example", SetupPath},
		{"extensions/jira-server/setup", SetupPath},
		{"/extensions/jira-server/%zz", SetupPath},
		{"/extensions/jira-server/?a=%zz", SetupPath},
	}
	for _, tt := range tests {
		if got := safeNext(tt.next); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.next, got, tt.want)
		}
	}
}
