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
