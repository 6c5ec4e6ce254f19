package outbound

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/jirasync/jirasync/plugin/internal/jsonscan"
	"github.com/jirasync/jirasync/plugin/internal/jsontest"
)

// TestJiraDecodersAgree holds the readers of a platform event and of
// Jira's answers to encoding/json (jsontest), and to its reading of nulls.
func TestJiraDecodersAgree(t *testing.T) {
	rng := jsontest.Rand()
	jsontest.Decodes(t, rng, readEvent)
	jsontest.Decodes(t, rng, issueReader)
	jsontest.Decodes(t, rng, readTransitions)
	jsontest.Decodes(t, rng, readUserHits)
	for _, body := range []string{`{"fields":null}`, `{"fields":{"assignee":null,"status":{"id":null}}}`, `{"id":"1"}`} {
		var want, got jiraIssue
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatal(err)
		}
		if err := jsonscan.Decode("test", []byte(body), &got, issueReader); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, %v; encoding/json %+v", body, got, err, want)
		}
	}
	var tr jiraTransitions
	if err := jsonscan.Decode("test", []byte(`{"transitions":[{"id":"5","to":null}]}`), &tr, readTransitions); err != nil ||
		len(tr.Transitions) != 1 || tr.Transitions[0].ID != "5" {
		t.Errorf("a transition to null: %+v, %v", tr, err)
	}
}
