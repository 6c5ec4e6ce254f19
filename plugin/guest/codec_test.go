package guest

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/internal/jsonscan"
	"github.com/jirasync/jirasync/plugin/internal/jsontest"
)

// TestDecodersAgree holds each answer decoder to encoding/json
// (jsontest): a member the decoder does not know, a field added to the ABI
// and not here, fails it.
func TestDecodersAgree(t *testing.T) {
	rng := jsontest.Rand()
	agree(t, rng, noMembers)
	agree(t, rng, installationMember)
	agree(t, rng, jiraMember)
	agree(t, rng, groupsLinkedMember)
	agree(t, rng, usersMember)
	agree(t, rng, assignMember)
	agree(t, rng, stateMember)
	agree(t, rng, groupGetMember)
	agree(t, rng, userGetMember)
}

func agree[T any](t *testing.T, rng *rand.Rand, member decoder[T]) {
	t.Helper()
	jsontest.Decodes(t, rng, func(s *jsonscan.Scanner, v *T) error {
		fault := reflect.ValueOf(v).Elem().FieldByName("Fault").Addr().Interface().(*abi.Fault)
		return answerReader(fault, member)(s, v)
	})
}

// TestDecodersRefuse: what encoding/json refuses, the decoders refuse, and
// what it accepts (null, unknown members, nulls for members) they accept
// alike. Keys differ in one way, on purpose: they match exactly, as the
// ABI schema spells them, where encoding/json ignores case.
func TestDecodersRefuse(t *testing.T) {
	for _, c := range []struct {
		answer string
		ok     bool
	}{
		{`null`, true},
		{`{}`, true},
		{` {"unknown":[1,{"x":null}],"changed":3} `, true},
		{`{"changed":null,"error":null}`, true},
		{`{"error":{"code":"unavailable","message":"down","extra":1}}`, true},
		{`{"changed":"1"}`, false},
		{`{"changed":1.5}`, false},
		{`{"changed":1e3}`, false},
		{`{"changed":true}`, false},
		{`{"error":"x"}`, false},
		{`{"error":{"code":5}}`, false},
		{`[]`, false},
		{`"x"`, false},
		{``, false},
		{`{`, false},
		{`{"changed":}`, false},
		{`{"changed":1} x`, false},
		{`{"changed":1,}`, false},
	} {
		var want, got abi.GroupsAssignResponse
		wantErr := json.Unmarshal([]byte(c.answer), &want)
		err := decodeAnswer([]byte(c.answer), &got, &got.Fault, assignMember)
		if (wantErr == nil) != c.ok || (err == nil) != c.ok {
			t.Errorf("%s: decoder %v, encoding/json %v, want ok %v", c.answer, err, wantErr, c.ok)
		}
		if c.ok && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded %+v, encoding/json %+v", c.answer, got, want)
		}
	}
	var got abi.StateGetResponse
	if err := decodeAnswer([]byte(`{"Value":"x","FOUND":true}`), &got, &got.Fault, stateMember); err != nil || got.Value != "" || got.Found {
		t.Errorf("keys of another case: %+v, %v; want them skipped", got, err)
	}
}

// TestEncodersAgree holds each request and output encoder to
// encoding/json's bytes (jsontest).
func TestEncodersAgree(t *testing.T) {
	rng := jsontest.Rand()
	jsontest.Encodes(t, rng, encodeEmpty)
	jsontest.Encodes(t, rng, encodeLog)
	jsontest.Encodes(t, rng, encodeJiraRequest)
	jsontest.Encodes(t, rng, encodeGroupsLinked)
	jsontest.Encodes(t, rng, encodeUsersByEmail)
	jsontest.Encodes(t, rng, encodeGroupsAssign)
	jsontest.Encodes(t, rng, encodeStateGet)
	jsontest.Encodes(t, rng, encodeStatePut)
	jsontest.Encodes(t, rng, encodeGroupGet)
	jsontest.Encodes(t, rng, encodeUserGet)
	jsontest.Encodes(t, rng, encodeHandleResponse)
	jsontest.Encodes(t, rng, encodeEventResponse)
	jsontest.Encodes(t, rng, encodeInspectResponse)
}
