package fakejira

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"reflect"
	"strings"
	"testing"
)

// send makes one request with a JSON body (none when body is "").
func send(t *testing.T, c *http.Client, method, u, body string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return readAnswer(t)(c.Do(req))
}

func decodeObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return m
}

func TestWebhookAPIsByVersion(t *testing.T) {
	mine, _ := keys(t)
	const hook = "http://127.0.0.1:9/hooks/jira?installation=7"
	tests := []struct {
		name, version string
		path, other   string // the offered API and the one that answers 404
		body          string
		// id reads the webhook's id from the registration answer the way
		// the product does.
		id func(t *testing.T, got map[string]any) string
		// check the registration answer.
		check func(t *testing.T, s *Server, got map[string]any)
		want  Webhook
	}{
		{
			name: "Jira 9 legacy API", version: "9.12.2",
			path: "/rest/webhooks/1.0/webhook", other: "/rest/jira-webhook/1.0/webhooks",
			body: `{"name":"jirasync","url":"` + hook + `","events":["jira:issue_updated"],"excludeBody":false,
				"filters":{"issue-related-events-section":"project = APP"}}`,
			id: func(t *testing.T, got map[string]any) string {
				self, _ := got["self"].(string)
				return path.Base(self)
			},
			check: func(t *testing.T, s *Server, got map[string]any) {
				want := map[string]any{
					"name": "jirasync", "url": hook, "events": []any{"jira:issue_updated"}, "excludeBody": false,
					"enabled": true, "lastUpdatedUser": "admin", "self": s.URL() + "/rest/webhooks/1.0/webhook/1",
					"filters": map[string]any{"issue-related-events-section": "project = APP"},
				}
				for k, v := range want {
					if !reflect.DeepEqual(got[k], v) {
						t.Errorf("%s = %#v, want %#v", k, got[k], v)
					}
				}
			},
			want: Webhook{ID: "1", Name: "jirasync", URL: hook, Events: []string{"jira:issue_updated"}, API: WebhookAPILegacy, Active: true},
		},
		{
			name: "Jira 10 API", version: "10.3.1",
			path: "/rest/jira-webhook/1.0/webhooks", other: "/rest/webhooks/1.0/webhook",
			body: `{"name":"jirasync","url":"` + hook + `","events":["jira:issue_updated"],
				"configuration":{"EXCLUDE_BODY":"false","SECRET":"s3cret-value"},"active":true,"sslVerificationRequired":true}`,
			id: func(t *testing.T, got map[string]any) string {
				id, ok := got["id"].(float64)
				if !ok {
					t.Fatalf("id %#v is not a number", got["id"])
				}
				return fmt.Sprint(id)
			},
			check: func(t *testing.T, s *Server, got map[string]any) {
				want := map[string]any{
					"id": float64(1), "name": "jirasync", "url": hook, "events": []any{"jira:issue_updated"}, "active": true,
					"configuration": map[string]any{"EXCLUDE_BODY": "false"}, "self": s.URL() + "/rest/jira-webhook/1.0/webhooks/1",
				}
				for k, v := range want {
					if !reflect.DeepEqual(got[k], v) {
						t.Errorf("%s = %#v, want %#v", k, got[k], v)
					}
				}
			},
			want: Webhook{ID: "1", Name: "jirasync", URL: hook, Events: []string{"jira:issue_updated"}, Secret: "s3cret-value",
				API: WebhookAPIJira10, Active: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Config{Version: tt.version})
			c := signer{consumer: consumer, key: mine, token: token}.client()

			// The other version's API does not exist here, signed or not.
			for _, p := range []string{tt.other, tt.other + "/1"} {
				resp, b := send(t, c, http.MethodPost, s.URL()+p, tt.body)
				if resp.StatusCode != 404 || !strings.Contains(string(b), "null for uri") {
					t.Errorf("POST %s: %d %s, want Jersey's 404", p, resp.StatusCode, b)
				}
			}

			resp, b := send(t, c, http.MethodPost, s.URL()+tt.path, tt.body)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("register: %d %s", resp.StatusCode, b)
			}
			if bytes.Contains(b, []byte("s3cret")) {
				t.Errorf("the secret is echoed: %s", b)
			}
			got := decodeObject(t, b)
			tt.check(t, s, got)
			id := tt.id(t, got)
			if id != tt.want.ID {
				t.Errorf("id %s, want %s", id, tt.want.ID)
			}
			if rec := lastRequest(t, s); !rec.Verified || rec.Status != 201 {
				t.Errorf("record %+v", rec)
			}
			if ws := s.Webhooks(); len(ws) != 1 || !reflect.DeepEqual(ws[0], tt.want) {
				t.Errorf("Webhooks() = %+v, want %+v", ws, tt.want)
			}

			resp, b = send(t, c, http.MethodGet, s.URL()+tt.path, "")
			var list []map[string]any
			if err := json.Unmarshal(b, &list); err != nil || resp.StatusCode != 200 || len(list) != 1 || bytes.Contains(b, []byte("s3cret")) {
				t.Errorf("list: %d %s %v", resp.StatusCode, b, err)
			}
			if resp, b := send(t, c, http.MethodGet, s.URL()+tt.path+"/"+id, ""); resp.StatusCode != 200 || decodeObject(t, b)["name"] != "jirasync" {
				t.Errorf("get: %d %s", resp.StatusCode, b)
			}

			if resp, b := send(t, c, http.MethodDelete, s.URL()+tt.path+"/"+id, ""); resp.StatusCode != http.StatusNoContent || len(b) != 0 {
				t.Errorf("delete: %d %s", resp.StatusCode, b)
			}
			if n := len(s.Webhooks()); n != 0 {
				t.Errorf("%d webhooks after delete", n)
			}
			for _, m := range []string{http.MethodDelete, http.MethodGet} {
				if resp, b := send(t, c, m, s.URL()+tt.path+"/"+id, ""); resp.StatusCode != 404 {
					t.Errorf("%s after delete: %d %s", m, resp.StatusCode, b)
				}
			}
			if resp, b := send(t, c, http.MethodGet, s.URL()+tt.path, ""); string(b) != "[]" {
				t.Errorf("empty list: %d %s", resp.StatusCode, b)
			}
			// Ids are not reused, as with Jira's database sequence.
			resp, b = send(t, c, http.MethodPost, s.URL()+tt.path, tt.body)
			if resp.StatusCode != 201 || tt.id(t, decodeObject(t, b)) != "2" {
				t.Errorf("second registration: %d %s", resp.StatusCode, b)
			}
		})
	}
}

func TestWebhookRegistrationRefused(t *testing.T) {
	mine, _ := keys(t)
	signed := func(_ *testing.T, _ *Server) *http.Client {
		return signer{consumer: consumer, key: mine, token: token}.client()
	}
	const (
		legacy = "/rest/webhooks/1.0/webhook"
		jira10 = "/rest/jira-webhook/1.0/webhooks"
	)
	forbidden := `{"errorMessages":["You do not have permission to create WebHook"],"errors":{}}`
	tests := []struct {
		name, version, path, body string
		contentType               string // default application/json
		client                    func(t *testing.T, s *Server) *http.Client
		noPermission              bool
		status                    int
		wantBody                  string   // exact, when set
		fieldErrors               []string // the keys of errors, when set
		problem                   string   // oauth_problem, for 401
	}{
		{name: "legacy without permission", version: "9.12.2", path: legacy, noPermission: true, status: 403, wantBody: forbidden,
			body: `{"name":"n","url":"http://127.0.0.1:9/h","events":["jira:issue_updated"]}`},
		{name: "jira 10 without permission", version: "10.3.1", path: jira10, noPermission: true, status: 403, wantBody: forbidden,
			body: `{"name":"n","url":"http://127.0.0.1:9/h","events":["jira:issue_updated"],"configuration":{"SECRET":"s"}}`},
		{name: "legacy without a name", version: "9.12.2", path: legacy, status: 400, fieldErrors: []string{"name"},
			body: `{"name":" ","url":"http://127.0.0.1:9/h","events":["jira:issue_updated"]}`},
		{name: "legacy with a relative url", version: "9.12.2", path: legacy, status: 400, fieldErrors: []string{"url"},
			body: `{"name":"n","url":"/hooks/jira","events":["jira:issue_updated"]}`},
		{name: "jira 10 with an ftp url and no name", version: "10.3.1", path: jira10, status: 400, fieldErrors: []string{"name", "url"},
			body: `{"url":"ftp://127.0.0.1/h","events":["jira:issue_updated"]}`},
		{name: "jira 10 with a url without host", version: "10.3.1", path: jira10, status: 400, fieldErrors: []string{"url"},
			body: `{"name":"n","url":"http:///h","events":["jira:issue_updated"]}`},
		{name: "not JSON", version: "10.3.1", path: jira10, status: 400, body: `{"name":`},
		{name: "configuration values are strings", version: "10.3.1", path: jira10, status: 400,
			body: `{"name":"n","url":"http://127.0.0.1:9/h","configuration":{"EXCLUDE_BODY":false}}`},
		{name: "form instead of JSON", version: "9.12.2", path: legacy, status: 415, contentType: "text/plain", body: `{}`},
		{name: "unsigned", version: "9.12.2", path: legacy, status: 401, problem: ProblemParameterAbsent, client: func(*testing.T, *Server) *http.Client { return plainClient() },
			body: `{"name":"n","url":"http://127.0.0.1:9/h"}`},
		{name: "signed with a request token", version: "10.3.1", path: jira10, status: 401, problem: ProblemTokenRejected,
			client: func(t *testing.T, s *Server) *http.Client {
				tok, _ := mustRequestToken(t, danceConfig(s, consumer, mine, "oob"))
				return signer{consumer: consumer, key: mine, token: tok}.client()
			},
			body: `{"name":"n","url":"http://127.0.0.1:9/h"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Config{Version: tt.version})
			s.SetWebhookPermission(!tt.noPermission)
			client := signed
			if tt.client != nil {
				client = tt.client
			}
			req, _ := http.NewRequest(http.MethodPost, s.URL()+tt.path, strings.NewReader(tt.body))
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			resp, err := client(t, s).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, b, tt.status)
			}
			if tt.wantBody != "" && string(b) != tt.wantBody {
				t.Errorf("body %s, want %s", b, tt.wantBody)
			}
			if tt.problem != "" && !strings.HasPrefix(string(b), "oauth_problem="+tt.problem) {
				t.Errorf("body %s, want oauth_problem=%s", b, tt.problem)
			}
			if tt.fieldErrors != nil {
				var e errorBody
				if err := json.Unmarshal(b, &e); err != nil || e.ErrorMessages == nil {
					t.Fatalf("%s is not an ErrorCollection: %v", b, err)
				}
				var keys []string
				for k := range e.Errors {
					keys = append(keys, k)
				}
				if len(keys) != len(tt.fieldErrors) || !containsAll(keys, tt.fieldErrors) {
					t.Errorf("field errors %v, want %v", e.Errors, tt.fieldErrors)
				}
			}
			if n := len(s.Webhooks()); n != 0 {
				t.Errorf("%d webhooks stored after a refusal", n)
			}
		})
	}

	t.Run("permission restored", func(t *testing.T) {
		s := start(t, Config{})
		s.SetWebhookPermission(false)
		s.SetWebhookPermission(true)
		resp, b := send(t, signed(t, s), http.MethodPost, s.URL()+legacy, `{"name":"n","url":"https://h.example/x"}`)
		if resp.StatusCode != 201 {
			t.Errorf("%d %s", resp.StatusCode, b)
		}
	})
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !contains(have, w) {
			return false
		}
	}
	return true
}

func TestFire(t *testing.T) {
	mine, _ := keys(t)
	type delivery struct {
		path   string
		header http.Header
		body   []byte
	}
	deliveries := make(chan delivery, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		deliveries <- delivery{r.URL.Path, r.Header.Clone(), b}
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer recv.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	event := []byte(`{"timestamp":1795000000000,"webhookEvent":"jira:issue_updated","issue":{"key":"APP-1"}}`)
	type want struct {
		path      string // "" for the unreachable receiver
		status    int
		secret    string // the X-Hub-Signature is expected keyed with it
		emptyBody bool
	}
	tests := []struct {
		name, version, path string
		register            []string // bodies; %s is the receiver's URL
		userAgent           string
		want                []want
	}{
		{
			name: "Jira 10 signs with the secret", version: "10.3.1", path: "/rest/jira-webhook/1.0/webhooks",
			userAgent: "JIRA-10.3.1 (1003001)",
			register: []string{
				`{"name":"signed","url":"%s/ok","events":["jira:issue_updated"],"configuration":{"EXCLUDE_BODY":"false","SECRET":"s3cret"},"active":true}`,
				`{"name":"unsigned","url":"%s/fail","events":["jira:issue_updated"],"configuration":{"EXCLUDE_BODY":"false"}}`,
				`{"name":"inactive","url":"%s/ok","events":["jira:issue_updated"],"configuration":{"SECRET":"x"},"active":false}`,
				`{"name":"no body","url":"%s/empty","events":["jira:issue_updated"],"configuration":{"EXCLUDE_BODY":"true","SECRET":"other"}}`,
			},
			want: []want{{path: "/ok", status: 200, secret: "s3cret"}, {path: "/fail", status: 500}, {path: "/empty", status: 200, secret: "other", emptyBody: true}},
		},
		{
			name: "Jira 9 does not sign", version: "9.12.2", path: "/rest/webhooks/1.0/webhook",
			userAgent: "JIRA-9.12.2 (912002)",
			register: []string{
				`{"name":"legacy","url":"%s/ok","events":["jira:issue_updated"],"excludeBody":false}`,
				`{"name":"disabled","url":"%s/ok","events":["jira:issue_updated"],"enabled":false}`,
				`{"name":"gone","url":"` + gone.URL + `/x","events":["jira:issue_updated"]}`,
			},
			want: []want{{path: "/ok", status: 200}, {}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Config{Version: tt.version})
			c := signer{consumer: consumer, key: mine, token: token}.client()
			for _, body := range tt.register {
				body = strings.ReplaceAll(body, "%s", recv.URL)
				if resp, b := send(t, c, http.MethodPost, s.URL()+tt.path, body); resp.StatusCode != 201 {
					t.Fatalf("register %s: %d %s", body, resp.StatusCode, b)
				}
			}

			results := s.Fire(context.Background(), event)
			if len(results) != len(tt.want) {
				t.Fatalf("%d results, want %d: %+v", len(results), len(tt.want), results)
			}
			for i, w := range tt.want {
				res := results[i]
				if w.path == "" {
					if res.Err == nil || res.Status != 0 {
						t.Errorf("result %d: %+v, want a transport error", i, res)
					}
					continue
				}
				if res.Err != nil || res.Status != w.status || res.Identifier == "" || !strings.HasSuffix(res.Webhook.URL, w.path) {
					t.Errorf("result %d: %+v, want status %d for %s", i, res, w.status, w.path)
				}
				d := <-deliveries
				if d.path != w.path || d.header.Get("X-Atlassian-Webhook-Identifier") != res.Identifier {
					t.Errorf("delivery %d went to %s with identifier %q, result says %q", i, d.path, d.header.Get("X-Atlassian-Webhook-Identifier"), res.Identifier)
				}
				wantBody := event
				if w.emptyBody {
					wantBody = []byte{}
				}
				if !bytes.Equal(d.body, wantBody) {
					t.Errorf("delivery %d body %q, want %q", i, d.body, wantBody)
				}
				if ua := d.header.Get("User-Agent"); !strings.Contains(ua, tt.userAgent) {
					t.Errorf("User-Agent %q lacks %q", ua, tt.userAgent)
				}
				if ct := d.header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
					t.Errorf("Content-Type %q", ct)
				}
				sig := d.header.Get("X-Hub-Signature")
				if w.secret == "" {
					if sig != "" {
						t.Errorf("delivery %d is signed: %s", i, sig)
					}
					continue
				}
				// Checked independently of the fake's code: HMAC-SHA256 of
				// the raw body as received, keyed with the secret.
				mac := hmac.New(sha256.New, []byte(w.secret))
				mac.Write(d.body)
				if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); sig != want {
					t.Errorf("delivery %d X-Hub-Signature %q, want %q", i, sig, want)
				}
			}
			select {
			case d := <-deliveries:
				t.Errorf("unexpected delivery to %s", d.path)
			default:
			}
		})
	}
}
