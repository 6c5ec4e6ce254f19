package groupsync

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/jirasync/jirasync/plugin/internal/jsonscan"
	"github.com/jirasync/jirasync/plugin/internal/jsontest"
	"github.com/jirasync/jirasync/plugin/webhook"
)

// TestJiraDecodersAgree holds the readers of Jira's answers and of the
// status cache to encoding/json (jsontest), and to its reading of nulls.
func TestJiraDecodersAgree(t *testing.T) {
	rng := jsontest.Rand()
	jsontest.Decodes(t, rng, readStatusList)
	jsontest.Decodes(t, rng, readStatuses)
	jsontest.Decodes(t, rng, readJiraUser)
	for _, body := range []string{`[{"id":"1","statusCategory":null},null]`, `[{"id":"1","name":null}]`, `null`} {
		var want, got []jiraStatus
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatal(err)
		}
		if err := jsonscan.Decode("test", []byte(body), &got, readStatuses); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, %v; encoding/json %+v", body, got, err, want)
		}
	}
	var l StatusList
	if err := jsonscan.Decode("test", []byte(`{"all":["1"],"names":{"1":null,"2":"Done"}}`), &l, readStatusList); err != nil ||
		!reflect.DeepEqual(l, StatusList{All: []string{"1"}, Names: map[string]string{"1": "", "2": "Done"}}) {
		t.Errorf("status list: %+v, %v", l, err)
	}
	var u webhook.User
	if err := jsonscan.Decode("test", []byte(`{"name":"bob","emailAddress":1}`), &u, readJiraUser); err == nil {
		t.Error("an email that is a number: no error")
	}
}
