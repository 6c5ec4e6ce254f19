package webhook

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/jirasync/jirasync/plugin/internal/jsonscan"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts is
// a JSON object whose fields it reports consistently.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "fixtures", "payloads", "*.json"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{`{}`, `[]`, `{"changelog":{"items":[{"field":"assignee"}]}}`,
		`{"issue":{"id":1,"fields":{"assignee":null}}}`, `{"timestamp":"12"}`, "\x00", `{"a":"\ud800"}`,
		`{"a":"0123456789abcdef\u00e9\"\\\/xyz","b":["\u0000é€😀",{"c":[[]]}]}`, "{\"a\":\"0123456\x1f\"}",
		`{"webhookEvent":null,"issue":{"key":"A-1"}}`, `{"webhookEvent":"","webhookEvent":"jira:issue_created"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := Parse(body)
		if err != nil {
			// It may refuse a field of the wrong type, never valid JSON
			// as invalid.
			if errors.Is(err, jsonscan.ErrSyntax) && json.Valid(body) {
				t.Fatalf("Parse called valid JSON invalid (%v): %q", err, body)
			}
			return
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			t.Fatalf("Parse accepted a body that is not a JSON object: %q", body)
		}
		// Without webhookEvent (or with null) the body is an issue update;
		// the last member wins, as in encoding/json.
		if ev, ok := obj["webhookEvent"]; !ok || string(ev) == "null" {
			if p.Event != EventIssueUpdated {
				t.Fatalf("Parse read event %q from a body without webhookEvent: %q", p.Event, body)
			}
		}
		for _, it := range p.Items {
			if it.Field == "assignee" && !p.ChangesField("assignee") {
				t.Fatal("ChangesField disagrees with Items")
			}
		}
	})
}
